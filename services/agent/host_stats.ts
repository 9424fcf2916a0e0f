/**
 * The host's real resources: cores, RAM, free RAM, CPU use from /proc/stat deltas.
 * @module
 */

/** Reads the aggregate `cpu` line of /proc/stat as [busy, total] jiffies. */
function cpuTimes(): [number, number] {
  try {
    const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.reduce((a, b) => a + b, 0);
    return [total - idle, total];
  } catch {
    return [0, 0];
  }
}

/** Measures CPU use between successive calls. */
export class CpuUse {
  #last = cpuTimes();
  /** Fraction of CPU time busy since the previous call (0..1). */
  sample(): number {
    const now = cpuTimes();
    const busy = now[0] - this.#last[0];
    const total = now[1] - this.#last[1];
    this.#last = now;
    return total > 0 ? Math.min(1, Math.max(0, busy / total)) : 0;
  }
}

/** Cores, total and available RAM of this machine. */
export function machineResources(): { cores: number; ramMiB: number; freeRamMiB: number } {
  const mem = Deno.systemMemoryInfo();
  return {
    cores: navigator.hardwareConcurrency,
    ramMiB: Math.floor(mem.total / 1048576),
    freeRamMiB: Math.floor(mem.available / 1048576),
  };
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** utime + stime of process `pid` in seconds, or undefined when it is gone. */
function processCpuSeconds(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces) start after its ')'.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch {
    return undefined;
  }
}

/** Measures the CPU use of single processes (in cores) between successive calls. */
export class ProcessCpuUse {
  #last = new Map<number, { cpu: number; at: number }>();
  /** Cores used by `pid` since the previous call for it (0 on the first). */
  sample(pid: number): number {
    const cpu = processCpuSeconds(pid);
    const at = performance.now();
    const prev = this.#last.get(pid);
    if (cpu === undefined) {
      this.#last.delete(pid);
      return 0;
    }
    this.#last.set(pid, { cpu, at });
    if (!prev || at <= prev.at) return 0;
    return Math.max(0, (cpu - prev.cpu) / ((at - prev.at) / 1000));
  }
}
