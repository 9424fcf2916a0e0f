/**
 * The lifeline between a launcher (`./vmesh boot`, `./vmesh up`) and the service processes it
 * starts, so that none outlives it: when the launcher dies, even of SIGKILL, or its terminal
 * closes, every child notices within a moment and exits.
 *
 * Two independent signals, either one enough:
 * - a pipe: the launcher spawns the child with stdin piped and never writes; the kernel closes
 *   the write end when the launcher dies, and the child's read of stdin ends (EOF). Used when
 *   the child needs no real stdin (all but an interactive console).
 * - the parent-death signal: the child asks Linux for SIGHUP when its parent dies
 *   (`prctl(PR_SET_PDEATHSIG)` through Deno FFI on libc); SIGHUP, not SIGTERM, so that it
 *   cannot be mistaken for a launcher's stop, and a closed terminal means the same. The kernel sends it when the parent
 *   THREAD that forked the child exits; Deno forks from the JS thread that calls
 *   `Deno.Command.spawn()`, which for a launcher is its main thread, alive as long as it is.
 *   Programs that cannot call prctl (nats-server) are started through util-linux `setpriv
 *   --pdeathsig TERM` ({@link withParentDeathSignal}).
 *
 * The launcher marks the children it spawns with `VMESH_LIFELINE=<launcher pid>[:stdin]`
 * ({@link lifelineSpawnOptions}); a service started by hand has no such variable, and
 * {@link watchLifeline} does nothing. A lost lifeline sends the process SIGTERM (so the
 * service's own drain runs) and forces the exit after a short grace, since the bus it would
 * drain to is usually gone too.
 *
 * ```ts
 * // launcher
 * const ll = lifelineSpawnOptions("null");
 * const child = new Deno.Command(Deno.execPath(), {
 *   args: ["run", "-A", "services/disk/main.ts"],
 *   stdin: ll.stdin,
 *   env: { ...ll.env },
 * }).spawn();
 * // service main.ts
 * watchLifeline({ name: "vmesh-disk" });
 * ```
 * @module
 */

/** The environment variable a launcher sets on the children it spawns. */
export const LIFELINE_ENV = "VMESH_LIFELINE";

/** Exit code after a lost lifeline when the service's own shutdown did not finish in time. */
export const LIFELINE_EXIT_CODE = 143;

/** Linux prctl option number (include/uapi/linux/prctl.h). */
const PR_SET_PDEATHSIG = 1;
const SIGHUP = 1;

/** How to spawn a child so that it can watch its launcher. */
export interface LifelineSpawnOptions {
  /** "piped" carries the lifeline pipe (keep the child's stdin open, write nothing). */
  stdin: "piped" | "inherit";
  /** Add to the child's environment. */
  env: Record<string, string>;
}

/**
 * Spawn options for a child of this process: with `stdin` "null" the child's stdin becomes the
 * lifeline pipe; with "inherit" (an interactive console) the parent-death signal alone.
 *
 * @example
 * ```ts
 * const { stdin, env } = lifelineSpawnOptions("null"); // { stdin: "piped", env: {...} }
 * ```
 */
export function lifelineSpawnOptions(stdin: "null" | "inherit"): LifelineSpawnOptions {
  return stdin === "null"
    ? { stdin: "piped", env: { [LIFELINE_ENV]: `${Deno.pid}:stdin` } }
    : { stdin: "inherit", env: { [LIFELINE_ENV]: `${Deno.pid}` } };
}

/**
 * `[command, args]` that run `binary args` with SIGTERM on the death of this process's
 * spawning thread, through util-linux `setpriv` (in every Debian install); unchanged where
 * `setpriv` is absent.
 *
 * @example
 * ```ts
 * const [cmd, args] = withParentDeathSignal("nats-server", ["-p", "4222"]);
 * new Deno.Command(cmd, { args }).spawn();
 * ```
 */
export function withParentDeathSignal(binary: string, args: string[]): [string, string[]] {
  const setpriv = findInPath("setpriv");
  if (!setpriv || Deno.build.os !== "linux") return [binary, args];
  return [setpriv, ["--pdeathsig", "TERM", "--", binary, ...args]];
}

/** The path of `name` in $PATH (or `name` itself when it holds a slash and exists). */
export function findInPath(name: string): string | undefined {
  const isFile = (p: string) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  };
  if (name.includes("/")) return isFile(name) ? name : undefined;
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    if (dir && isFile(`${dir}/${name}`)) return `${dir}/${name}`;
  }
  return undefined;
}

/** Options of {@link watchLifeline}. */
export interface WatchLifelineOptions {
  /** Prefix of the one line logged when the lifeline is lost, e.g. "vmesh-disk". */
  name?: string;
  /** How long the service's own SIGTERM shutdown may take before a forced exit. Default 1000. */
  graceMs?: number;
}

/** What {@link watchLifeline} set up. */
export interface Lifeline {
  /** The launcher's pid. */
  readonly parent: number;
  /** The pipe on stdin is watched. */
  readonly pipe: boolean;
  /** The parent-death signal (SIGHUP) is armed (prctl via FFI). */
  readonly deathSignal: boolean;
  /** Resolves with the reason once the lifeline is lost. */
  readonly lost: Promise<string>;
}

/**
 * In a process spawned by a launcher (`VMESH_LIFELINE` set): exits soon after the launcher
 * dies. Returns undefined (and does nothing) otherwise. The service must stop on SIGTERM, as
 * every vmesh service does; the forced exit after `graceMs` covers a drain that hangs.
 *
 * @example
 * ```ts
 * watchLifeline({ name: "vmesh-net" }); // first thing in main()
 * ```
 */
export function watchLifeline(opts: WatchLifelineOptions = {}): Lifeline | undefined {
  const spec = Deno.env.get(LIFELINE_ENV);
  if (spec === undefined) return undefined;
  // Not for grandchildren: they have their own parent (this process) to watch.
  Deno.env.delete(LIFELINE_ENV);
  const m = /^(\d+)(:stdin)?$/.exec(spec);
  if (!m) {
    console.error(`${opts.name ?? "vmesh"}: ignoring malformed ${LIFELINE_ENV}=${spec}`);
    return undefined;
  }
  const parent = Number(m[1]);
  const name = opts.name ?? "vmesh";
  let resolveLost: (why: string) => void = () => {};
  const lost = new Promise<string>((r) => resolveLost = r);
  let gone = false;
  const lose = (why: string) => {
    if (gone) return;
    gone = true;
    resolveLost(why);
    try {
      console.error(`${name}: ${why}; exiting`);
    } catch { /* stderr went with the launcher */ }
    setTimeout(() => Deno.exit(LIFELINE_EXIT_CODE), opts.graceMs ?? 1000);
    Deno.kill(Deno.pid, "SIGTERM");
  };
  // Unknown (no read access to /proc without -A) counts as alive.
  const parentGone = () => {
    try {
      return parentPid() !== parent;
    } catch {
      return false;
    }
  };

  // Before prctl, so the parent-death signal never meets the default action alone.
  Deno.addSignalListener("SIGHUP", () => {
    // The kernel signals when the launcher's spawning thread exits, maybe before the rest.
    lose(parentGone() ? `launcher (pid ${parent}) gone` : `SIGHUP (launcher ${parent} dying?)`);
  });
  const deathSignal = armParentDeathSignal();
  // The launcher may have died before prctl: then the signal will never come.
  if (parentGone()) lose(`launcher (pid ${parent}) gone before the lifeline was set`);

  const pipe = m[2] !== undefined;
  if (pipe) {
    (async () => {
      const buf = new Uint8Array(64);
      try {
        while (await Deno.stdin.read(buf) !== null) { /* the launcher writes nothing */ }
      } catch { /* a broken pipe ends it too */ }
      lose(`launcher (pid ${parent}) closed its pipe`);
    })();
  }
  if (!pipe && !deathSignal) {
    console.error(`${name}: no lifeline to pid ${parent} (no pipe, no FFI): will outlive it`);
  }
  return { parent, pipe, deathSignal, lost };
}

/** This process's parent pid now (Deno.ppid is fixed at start). */
export function parentPid(): number {
  const stat = Deno.readTextFileSync("/proc/self/stat");
  // Fields after the ")" of the command name: state, ppid, ...
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** prctl(PR_SET_PDEATHSIG, SIGHUP) through FFI; false where FFI or prctl is unavailable. */
function armParentDeathSignal(): boolean {
  if (Deno.build.os !== "linux") return false;
  let lib;
  try {
    lib = Deno.dlopen("libc.so.6", {
      prctl: { parameters: ["i32", "u64", "u64", "u64", "u64"], result: "i32" },
    });
  } catch {
    return false; // no --allow-ffi, or no glibc
  }
  try {
    return lib.symbols.prctl(PR_SET_PDEATHSIG, BigInt(SIGHUP), 0n, 0n, 0n) === 0;
  } finally {
    lib.close();
  }
}
