/**
 * Helpers of the snapshot tests: `./vmesh` as a user runs it, polling for a condition, and
 * the tick a guest loop wrote to sector 1 of its disk (`echo "disk N" | dd ... seek=1`), read
 * from a COW overlay file.
 * @module
 */
import { CowOverlay } from "../services/disk/cow_overlay.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** Spawns `./vmesh ARGS` (cli/main.ts) with `env` added, output piped. */
export function vmesh(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs `./vmesh ARGS` to its end. */
export async function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await vmesh(args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Resolves once `ok()` holds; rejects naming `what` after `ms`. */
export async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 180_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The "disk N" the guest wrote to sector 1 of its disk, as overlay file `overlay` holds it (0: none). */
export async function diskTick(overlay: string): Promise<number> {
  const d = await CowOverlay.open(overlay, { readOnly: true });
  try {
    const m = /^disk (\d+)\n/.exec(new TextDecoder().decode(await d.read(512, 512)));
    return m ? Number(m[1]) : 0;
  } finally {
    d.close();
  }
}
