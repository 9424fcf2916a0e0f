/**
 * The Debian side of the guest recipe: installed package versions, installing what is
 * missing, the deb-src entry busybox's source needs, and the busybox source version.
 */

import { Reporter, runStep, StepError } from "./step_runner.ts";

/** Binary packages the recipe builds with; their versions are part of the recipe hash. */
export const RECIPE_PACKAGES = [
  "linux-source-6.1",
  "gcc-riscv64-linux-gnu",
  // Only a Recommends of gcc-riscv64-linux-gnu: without it static busybox has no libc headers.
  "libc6-dev-riscv64-cross",
  "opensbi",
  "e2fsprogs",
] as const;

/** Host tools the build needs besides the recipe packages (versions not hashed). */
export const BUILD_TOOL_PACKAGES = [
  "make",
  "gcc",
  "bc",
  "flex",
  "bison",
  "xz-utils",
  "dpkg-dev",
  "libc6-dev",
  // objtool, which the x86-64 guest kernel (guest/x86/kernel.ts) cannot be built without.
  "libelf-dev",
] as const;

/** Where the deb-src entry for busybox's source package is written. */
export const SOURCES_LIST = "/etc/apt/sources.list.d/vmesh-src.list";
const APT_LISTS = "/var/lib/apt/lists";
// Bumped when the memo's meaning changes, so older memos are re-resolved.
const MEMO_VERSION = 2;

async function output(cmd: string[], cwd?: string): Promise<{ ok: boolean; out: string }> {
  try {
    const r = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd,
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).output();
    return { ok: r.success, out: new TextDecoder().decode(r.stdout) };
  } catch {
    return { ok: false, out: "" };
  }
}

/** Installed versions of `packages` (missing ones are absent from the map). */
export async function installedVersions(packages: readonly string[]): Promise<Map<string, string>> {
  const r = await output([
    "dpkg-query",
    "-W",
    "-f",
    "${Package} ${Version} ${db:Status-Status}\n",
    ...packages,
  ]);
  const versions = new Map<string, string>();
  for (const line of r.out.split("\n")) {
    const [name, version, status] = line.split(" ");
    if (status === "installed") versions.set(name, version);
  }
  return versions;
}

/** Runs `apt-get update` and installs `packages`, as root (or via passwordless sudo). */
async function aptGet(args: string[], logPath: string, report: Reporter, name: string) {
  const root = Deno.uid?.() === 0;
  const sudo = root ? [] : ["sudo", "-n"];
  if (!root && !(await output(["sudo", "-n", "true"])).ok) {
    throw new StepError(
      name,
      `needs root to run apt-get ${args.join(" ")}; run it as root or: sudo apt-get ${
        args.join(" ")
      }`,
    );
  }
  await runStep({
    name,
    cmd: [...sudo, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", ...args],
    logPath,
    report,
  });
}

/** Installs whichever recipe and build-tool packages are missing. */
export async function ensurePackages(logPath: string, report: Reporter): Promise<void> {
  const wanted = [...RECIPE_PACKAGES, ...BUILD_TOOL_PACKAGES];
  const have = await installedVersions(wanted);
  const missing = wanted.filter((p) => !have.has(p));
  if (missing.length === 0) return;
  report(`installing from Debian: ${missing.join(" ")}`);
  await aptGet(["update", "-q"], logPath, report, "apt-get update");
  await aptGet(
    ["install", "-y", "-q", "--no-install-recommends", ...missing],
    logPath,
    report,
    "apt-get install",
  );
}

/** One `deb` source: mirror URI, suites, components and keyring. */
export interface DebSource {
  uri: string;
  suites: string[];
  components: string[];
  signedBy?: string;
}

/** Parses both one-line (`deb [opts] uri suite comp...`) and deb822 (.sources) entries. */
export function parseDebSources(text: string, deb822: boolean): DebSource[] {
  const out: DebSource[] = [];
  if (deb822) {
    for (const para of text.split(/\n\s*\n/)) {
      const f = new Map<string, string>();
      for (const line of para.split("\n")) {
        const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
        if (m) f.set(m[1].toLowerCase(), m[2].trim());
      }
      if (!(f.get("types") ?? "").split(/\s+/).includes("deb")) continue;
      if ((f.get("enabled") ?? "yes") === "no") continue;
      for (const uri of (f.get("uris") ?? "").split(/\s+/).filter(Boolean)) {
        out.push({
          uri,
          suites: (f.get("suites") ?? "").split(/\s+/).filter(Boolean),
          components: (f.get("components") ?? "").split(/\s+/).filter(Boolean),
          signedBy: f.get("signed-by"),
        });
      }
    }
    return out;
  }
  for (const raw of text.split("\n")) {
    const line = raw.replace(/#.*/, "").trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const signedBy = /signed-by=(\S+)/.exec(m[1] ?? "")?.[1];
    out.push({ uri: m[2], suites: [m[3]], components: m[4].split(/\s+/), signedBy });
  }
  return out;
}

/** The deb-src line for bookworm main on the mirror the system already uses. */
export async function debSrcLine(): Promise<string> {
  return debSrcLineFor(await readDebSources());
}

/** Every `deb` source in sources.list and sources.list.d/. */
async function readDebSources(): Promise<DebSource[]> {
  const files: [string, boolean][] = [["/etc/apt/sources.list", false]];
  try {
    for await (const e of Deno.readDir("/etc/apt/sources.list.d")) {
      if (e.name.endsWith(".list")) files.push([`/etc/apt/sources.list.d/${e.name}`, false]);
      if (e.name.endsWith(".sources")) files.push([`/etc/apt/sources.list.d/${e.name}`, true]);
    }
  } catch { /* no sources.list.d */ }
  const sources: DebSource[] = [];
  for (const [path, deb822] of files.sort()) {
    try {
      sources.push(...parseDebSources(await Deno.readTextFile(path), deb822));
    } catch { /* unreadable or absent */ }
  }
  return sources;
}

/**
 * The deb-src line for bookworm main, given the system's `deb` sources.
 *
 * @example
 * ```ts
 * debSrcLineFor(parseDebSources("deb http://m/debian bookworm main\n", false));
 * // "deb-src http://m/debian bookworm main"
 * ```
 */
export function debSrcLineFor(sources: DebSource[]): string {
  const src = sources.find((s) => s.suites.includes("bookworm")) ??
    { uri: "http://deb.debian.org/debian", suites: [], components: [] };
  // apt refuses two entries for one mirror with different Signed-By values, so when any
  // entry names a keyring for this mirror (e.g. debian.sources), the deb-src one does too.
  const same = (u: string) => u.replace(/\/+$/, "") === src.uri.replace(/\/+$/, "");
  const signedBy = src.signedBy ?? sources.find((s) => same(s.uri) && s.signedBy)?.signedBy;
  const opts = signedBy ? `[signed-by=${signedBy}] ` : "";
  return `deb-src ${opts}${src.uri} bookworm main`;
}

/** Files under /var/lib/apt/lists that hold source package indexes. */
async function sourceIndexFingerprint(): Promise<string> {
  const parts: string[] = [];
  try {
    for await (const e of Deno.readDir(APT_LISTS)) {
      if (!/_source_Sources/.test(e.name)) continue;
      const st = await Deno.stat(`${APT_LISTS}/${e.name}`);
      parts.push(`${e.name}:${st.size}:${st.mtime?.getTime()}`);
    }
  } catch { /* no lists */ }
  return parts.sort().join(",");
}

/** Writes the deb-src entry (if absent) and refreshes the package lists. */
export async function ensureDebSrc(logPath: string, report: Reporter): Promise<void> {
  let present = false;
  try {
    present = (await Deno.readTextFile(SOURCES_LIST)).includes("deb-src");
  } catch { /* absent */ }
  if (present && (await sourceIndexFingerprint()) !== "") return;
  const line = await debSrcLine();
  report(`adding ${SOURCES_LIST}: ${line}`);
  try {
    await Deno.writeTextFile(
      SOURCES_LIST,
      `# written by ./vmesh guest (busybox source)\n${line}\n`,
    );
  } catch (e) {
    throw new StepError(
      "deb-src entry",
      `cannot write ${SOURCES_LIST} (${(e as Error).message}); add this line as root: ${line}`,
    );
  }
  await aptGet(["update", "-q"], logPath, report, "apt-get update (deb-src)");
}

/**
 * The busybox source version `apt-get source busybox` would fetch. Asking apt takes about a
 * second, so the answer is remembered in `memoPath` until the source indexes change.
 */
export async function busyboxSourceVersion(
  memoPath: string,
  logPath: string,
  report: Reporter,
): Promise<string> {
  const fingerprint = await sourceIndexFingerprint();
  try {
    const memo = JSON.parse(await Deno.readTextFile(memoPath));
    if (
      memo.v === MEMO_VERSION && memo.fingerprint === fingerprint && fingerprint !== "" &&
      typeof memo.busybox === "string"
    ) {
      return memo.busybox;
    }
  } catch { /* no memo yet */ }
  await ensureDebSrc(logPath, report);
  const r = await output(["apt-get", "source", "--print-uris", "-qq", "busybox"]);
  // The second column is the file name (the first is the URL, with '+' percent-encoded).
  const m = /\sbusybox_(\S+)\.dsc\s/.exec(r.out);
  if (!m) {
    throw new StepError(
      "busybox source version",
      `apt-get source --print-uris busybox found no source package (is ${SOURCES_LIST} right?)`,
    );
  }
  await Deno.writeTextFile(
    memoPath,
    JSON.stringify({
      v: MEMO_VERSION,
      fingerprint: await sourceIndexFingerprint(),
      busybox: m[1],
    }) + "\n",
  );
  return m[1];
}
