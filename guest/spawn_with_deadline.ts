/**
 * A child process with a deadline: the QEMU oracles (Linux guests in qemu_oracle.ts,
 * bare-metal ISA programs in tests/riscv/run.ts) must not hang a test run.
 */

/** A child spawned by {@link spawnWithDeadline}. */
export interface DeadlineChild {
  /** stdin closed; stdout and stderr piped (read them, or the child may block). */
  readonly child: Deno.ChildProcess;
  /** True once the deadline has killed the child. */
  readonly timedOut: boolean;
  /** Cancels the deadline; call it once the child is done. */
  clear(): void;
}

/** Spawns `cmd args` and SIGKILLs it if it is still running after `timeoutMs`. */
export function spawnWithDeadline(cmd: string, args: string[], timeoutMs: number): DeadlineChild {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
  }, timeoutMs);
  return {
    child,
    get timedOut() {
      return timedOut;
    },
    clear: () => clearTimeout(timer),
  };
}
