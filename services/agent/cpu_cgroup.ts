/**
 * CPU quota of one VM, enforced by the kernel: the VM's CPU service process goes into its own
 * cgroup under `vmesh/<host>/<vm>` with a CFS bandwidth cap of `harts` cores (so a guest
 * cannot use more CPU than its harts) and `cpu.shares` as its weight when the host is
 * contended. cgroup v2 (`cpu.max`, `cpu.weight`) when the unified hierarchy has the cpu
 * controller, else cgroup v1's `cpu` hierarchy. Needs write access to the hierarchy (root).
 * @module
 */

/** One hierarchy the agent can make groups in. */
interface Hierarchy {
  version: 1 | 2;
  /** Where the agent's groups go, e.g. /sys/fs/cgroup/cpu/vmesh/h1. */
  base: string;
}

const PERIOD_US = 100_000;

async function writable(dir: string): Promise<boolean> {
  try {
    await Deno.mkdir(dir, { recursive: true });
    return true;
  } catch {
    return false;
  }
}

/** cgroup v2 weight (1..10000) for a v1 shares value (2..262144), as runc maps them. */
export function sharesToWeight(shares: number): number {
  const s = Math.min(262144, Math.max(2, shares));
  return Math.round(1 + ((s - 2) * 9999) / 262142);
}

/**
 * The cgroup of one VM's CPU service.
 *
 * @example
 * ```ts
 * const cpu = await CpuCgroups.open("h1");
 * const g = await cpu?.create("vm1", { harts: 1, shares: 1024 });
 * await g?.add(pid);
 * ```
 */
export class CpuCgroup {
  constructor(readonly path: string, readonly version: 1 | 2) {}

  /** Moves process `pid` (all its threads) into the group. */
  async add(pid: number): Promise<void> {
    await Deno.writeTextFile(`${this.path}/cgroup.procs`, `${pid}\n`);
  }

  /** The pids in the group. */
  async pids(): Promise<number[]> {
    const t = await Deno.readTextFile(`${this.path}/cgroup.procs`).catch(() => "");
    return t.split("\n").filter((l) => l).map(Number);
  }

  /** Removes the group (its processes have exited, or it fails quietly). */
  async remove(): Promise<void> {
    await Deno.remove(this.path).catch(() => {});
  }
}

/** The agent's CPU cgroups, or why there are none. */
export class CpuCgroups {
  private constructor(readonly h: Hierarchy) {}

  /** Where groups go (for the agent's ready line). */
  get base(): string {
    return this.h.base;
  }

  /** The cgroup v2 or v1 cpu hierarchy for host `host`; a string saying why not otherwise. */
  static async open(host: string, root = "/sys/fs/cgroup"): Promise<CpuCgroups | string> {
    const controllers = await Deno.readTextFile(`${root}/cgroup.controllers`).catch(() => "");
    if (controllers.split(/\s+/).includes("cpu")) {
      const base = `${root}/vmesh/${host}`;
      if (await writable(base)) {
        // Children of vmesh/ and vmesh/<host> need the cpu controller handed down.
        for (const dir of [root, `${root}/vmesh`, base]) {
          await Deno.writeTextFile(`${dir}/cgroup.subtree_control`, "+cpu").catch(() => {});
        }
        return await new CpuCgroups({ version: 2, base }).#sweep();
      }
    }
    const v1 = `${root}/cpu`;
    if (await Deno.stat(`${v1}/cpu.cfs_quota_us`).then(() => true, () => false)) {
      const base = `${v1}/vmesh/${host}`;
      if (await writable(base)) return await new CpuCgroups({ version: 1, base }).#sweep();
      return `cannot create ${base} (the agent needs root for CPU quotas)`;
    }
    return `no cpu cgroup controller under ${root}`;
  }

  // Groups a killed agent left behind: empty ones go (rmdir refuses a group with processes).
  async #sweep(): Promise<this> {
    for await (const e of Deno.readDir(this.h.base)) {
      if (e.isDirectory) await Deno.remove(`${this.h.base}/${e.name}`).catch(() => {});
    }
    return this;
  }

  /** Removes this host's group and `vmesh/` when they are empty (the agent stops). */
  async close(): Promise<void> {
    await Deno.remove(this.h.base).catch(() => {});
    await Deno.remove(this.h.base.slice(0, this.h.base.lastIndexOf("/"))).catch(() => {});
  }

  /** Makes (or resets) VM `vm`'s group: a cap of `harts` cores, weight `shares`. */
  async create(vm: string, q: { harts: number; shares: number }): Promise<CpuCgroup> {
    const path = `${this.h.base}/${vm}`;
    await Deno.mkdir(path, { recursive: true });
    const quota = q.harts * PERIOD_US;
    if (this.h.version === 2) {
      await Deno.writeTextFile(`${path}/cpu.max`, `${quota} ${PERIOD_US}`);
      await Deno.writeTextFile(`${path}/cpu.weight`, String(sharesToWeight(q.shares)));
    } else {
      await Deno.writeTextFile(`${path}/cpu.cfs_period_us`, String(PERIOD_US));
      await Deno.writeTextFile(`${path}/cpu.cfs_quota_us`, String(quota));
      await Deno.writeTextFile(`${path}/cpu.shares`, String(q.shares));
    }
    return new CpuCgroup(path, this.h.version);
  }
}
