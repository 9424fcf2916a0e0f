/** The inputs that ever broke something: fuzz/regressions/<target>/<hash>.bin and its .txt. */

/** Where regression cases live (in the repo, so `./vmesh test` replays them). */
export const REGRESSIONS_DIR: URL = new URL("./regressions/", import.meta.url);

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return [...d.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Keeps `input` as a regression case of `target` with what went wrong; returns the `.bin` path.
 *
 * @example
 * ```ts
 * await saveRegression("elf", Uint8Array.of(0x7f), "RangeError: ...");
 * ```
 */
export async function saveRegression(
  target: string,
  input: Uint8Array,
  what: string,
  dir: URL = REGRESSIONS_DIR,
): Promise<string> {
  const folder = new URL(`${target}/`, dir);
  await Deno.mkdir(folder, { recursive: true });
  const name = await sha256(input);
  const bin = new URL(`${name}.bin`, folder);
  await Deno.writeFile(bin, input);
  await Deno.writeTextFile(
    new URL(`${name}.txt`, folder),
    what.endsWith("\n") ? what : what + "\n",
  );
  return bin.pathname;
}

/**
 * Every kept case of `target`: its path and bytes, sorted by name.
 *
 * @example
 * ```ts
 * for (const { path, input } of listRegressions("bzimage")) console.log(path, input.length);
 * ```
 */
export function listRegressions(
  target: string,
  dir: URL = REGRESSIONS_DIR,
): { path: string; input: Uint8Array }[] {
  const folder = new URL(`${target}/`, dir);
  let names: string[];
  try {
    names = [...Deno.readDirSync(folder)].filter((e) => e.isFile && e.name.endsWith(".bin"))
      .map((e) => e.name).sort();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.map((n) => {
    const url = new URL(n, folder);
    return { path: url.pathname, input: Deno.readFileSync(url) };
  });
}
