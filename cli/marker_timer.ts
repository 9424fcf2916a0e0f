/**
 * Times console markers of a VM process (used by boot_bench.ts): spawns a command in its own
 * process group, reads its stdout and stderr, notes the milliseconds from spawn to the first
 * appearance of each marker, and stops the whole group once the last marker is seen (or at a
 * time limit), so no process it started outlives the measurement.
 */

/** Options for {@link timeMarkers}. */
export interface MarkerRunOptions {
  /** Strings to time, in any order; the run stops once every one has been seen. */
  markers: string[];
  /** Kill the run after this many milliseconds. */
  timeoutMs: number;
  /** Extra environment for the process. */
  env?: Record<string, string>;
  /** Let the process end by itself instead of stopping it at the last marker. */
  waitForExit?: boolean;
  /** Milliseconds between SIGTERM and SIGKILL of the process group (default 15000). */
  graceMs?: number;
}

/** What {@link timeMarkers} saw. */
export interface MarkerRun {
  /** Milliseconds from spawn to each marker's first appearance (absent: never seen). */
  at: Record<string, number>;
  /** stdout and stderr, as they arrived. */
  output: string;
  /** stdout alone. */
  stdout: string;
  /** Exit code (null when killed by a signal). */
  code: number | null;
  /** True when the time limit ended the run. */
  timedOut: boolean;
  /** Milliseconds from spawn to the process's exit. */
  wallMs: number;
}

/** Sends `signal` to the process group `pgid`; false if it is gone. */
function killGroup(pgid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs `cmd args` under `setsid` (so it leads a new process group holding every process it
 * starts), timestamps `o.markers` in its output, then SIGTERMs the group, and SIGKILLs it
 * after the grace period.
 */
export async function timeMarkers(
  cmd: string,
  args: string[],
  o: MarkerRunOptions,
): Promise<MarkerRun> {
  const t0 = performance.now();
  const child = new Deno.Command("setsid", {
    args: [cmd, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...o.env },
  }).spawn();
  const pgid = child.pid;
  const at: Record<string, number> = {};
  let output = "", stdout = "", timedOut = false, stopping = false;
  let killTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    killGroup(pgid, "SIGTERM");
    killTimer = setTimeout(() => killGroup(pgid, "SIGKILL"), o.graceMs ?? 15_000);
  };
  const limit = setTimeout(() => {
    timedOut = true;
    stop();
  }, o.timeoutMs);
  const read = async (stream: ReadableStream<Uint8Array>, isStdout: boolean) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      const text = dec.decode(chunk, { stream: true });
      const now = performance.now() - t0;
      // Search the new text plus an overlap, so a marker split across chunks is found.
      const from = Math.max(0, output.length - 64);
      output += text;
      if (isStdout) stdout += text;
      const fresh = output.slice(from);
      for (const m of o.markers) if (at[m] === undefined && fresh.includes(m)) at[m] = now;
      if (!o.waitForExit && o.markers.every((m) => at[m] !== undefined)) stop();
    }
  };
  try {
    const [status] = await Promise.all([
      // Once the leader is gone, whatever it left behind is a stray holding our pipes open.
      child.status.then((s) => {
        killTimer ??= setTimeout(() => killGroup(pgid, "SIGKILL"), 2000);
        return s;
      }),
      read(child.stdout, true),
      read(child.stderr, false),
    ]);
    return {
      at,
      output,
      stdout,
      code: status.signal === null ? status.code : null,
      timedOut,
      wallMs: performance.now() - t0,
    };
  } finally {
    clearTimeout(limit);
    clearTimeout(killTimer);
    // Whatever is left of the group (a service that ignored SIGTERM) goes now.
    killGroup(pgid, "SIGKILL");
  }
}
