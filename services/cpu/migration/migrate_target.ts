/**
 * The target side of live migration: a CPU service started with `--incoming` (QEMU's
 * `-incoming`) and the VM's own flags builds its machine and connects to the VM's disk services
 * ahead, then serves `vmesh.<vm>.incoming.{hello,pages,finish,abort}`. `hello` checks that the
 * source's machine is this one (flags but the engine, and the images) and clears RAM; `pages`
 * writes pages; `finish` writes the last ones, loads every hart and device record (virtio
 * transports resubmit the block requests that were in flight), restarts the clock at the
 * source's `mtime`, takes over the VM's devices and runs, answering after the first batch.
 * @module
 */
import { createHash } from "node:crypto";
import { type Bus, BusError, type DeviceService, migration, Status } from "@vmesh/bus";
import type { Machine } from "../machine/machine.ts";
import { loadMachine } from "../snapshot/machine_state.ts";
import { SnapshotError } from "../snapshot/snapshot_error.ts";
import type { IncomingClock } from "./incoming_clock.ts";
import { applyPages, nonZeroPages, PAGE_SIZE } from "./page_batch.ts";

/** VMESH_MIGRATE_DEBUG=1: timings on stderr. */
const DEBUG = Deno.env.get("VMESH_MIGRATE_DEBUG") === "1";
/** Fault injection for tests: refuse `finish`, so the source must take its VM back. */
const REFUSE_FINISH = Deno.env.get("VMESH_MIGRATE_REFUSE_FINISH") === "1";

/** What the target side needs of the VM service. */
export interface MigrationTarget {
  bus: Bus;
  vm: string;
  /** This host's name (`--host`). */
  host: string;
  machine: Machine;
  clock: IncomingClock;
  machineFlags: string;
  imagesDigest: string;
  /**
   * Takes over the VM (console output continues at `consoleSeq`; console input the source
   * queued, then what arrived from `consoleInNext` on), starts the guest and resolves with the
   * wall times (Unix ms) its run loop started and its first batch began.
   */
  takeOver(
    fin: Pick<migration.Finish, "consoleSeq" | "consoleInNext" | "consolePending">,
  ): Promise<{ resumed: number; first: number }>;
}

/** How a migration into this service ended. */
export interface Incoming {
  /** The incoming ops' service (stop it once done). */
  svc: DeviceService;
  /** Resolves once the guest runs here; rejects when the source aborts. */
  done: Promise<void>;
}

/** Serves the incoming ops of `t`. */
export async function serveIncoming(t: MigrationTarget): Promise<Incoming> {
  let phase: "waiting" | "receiving" | "finishing" | "running" = "waiting";
  let round = -1;
  let settle!: { ok: () => void; fail: (e: Error) => void };
  const done = new Promise<void>((ok, fail) => settle = { ok, fail });
  const ram = t.machine.mem.ram();
  // RAM as the source's round 0 expects it: all zero. Only the pages the machine loaded its
  // images into are written (all of RAM would fault every page in and keep it resident), and
  // before serving, so a migration does not wait for it (the scan faults pages in: 0.3-0.6 s).
  const h0 = performance.now();
  for (const p of nonZeroPages(ram)) ram.fill(0, p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
  t.machine.mem.noteWrite(0x8000_0000, ram.length);
  if (DEBUG) console.error(`migrate: RAM cleared in ${(performance.now() - h0).toFixed(1)} ms`);
  const refuse = (msg: string) => new BusError(Status.FAILED_PRECONDITION, msg);
  const pages = (b: migration.PageBatch | null) => {
    if (!b) return 0;
    try {
      return applyPages(ram, b);
    } catch (e) {
      throw new BusError(Status.INVALID_ARGUMENT, `bad page batch: ${(e as Error).message}`);
    }
  };
  const svc = await t.bus.serve({
    vm: t.vm,
    device: migration.INCOMING_DEVICE,
    name: "vmesh-cpu-incoming",
    version: "0.1.0",
    description: "vmesh CPU service waiting for a live migration",
    ops: migration.ops,
    handlers: {
      hello: (req) => {
        if (phase !== "waiting") throw refuse(`migration is ${phase}: start a new --incoming`);
        if (req.host !== t.host) {
          throw refuse(
            `this incoming CPU service of ${t.vm} is on host ${t.host}, not ${req.host}`,
          );
        }
        const diff = flagsDiffer(req.machine, t.machineFlags);
        if (diff) throw refuse(`the source's machine differs from this one: ${diff}`);
        if (req.imagesDigest !== t.imagesDigest) {
          throw refuse("the source was built from other firmware, kernel or initrd files");
        }
        phase = "receiving";
        return { host: t.host };
      },
      pages: (req) => {
        if (phase !== "receiving") throw refuse(`pages while the migration is ${phase}`);
        if (DEBUG && req.round !== round) {
          console.error(`migrate: pages of round ${round = req.round}`);
        }
        return { pages: pages(req) };
      },
      finish: async (req) => {
        if (phase !== "receiving") throw refuse(`finish while the migration is ${phase}`);
        if (REFUSE_FINISH) throw refuse("finish refused (VMESH_MIGRATE_REFUSE_FINISH=1)");
        const t0 = performance.now();
        if (DEBUG) {
          const since = performance.timeOrigin + t0 - req.pausedAtUnixMs;
          console.error(`migrate: finish arrived ${since.toFixed(1)} ms after the source's pause`);
        }
        pages(req.pages);
        if (req.ramSha256.length) {
          const h = createHash("sha256");
          for (let o = 0; o < ram.length; o += 1 << 24) h.update(ram.slice(o, o + (1 << 24)));
          const got = new Uint8Array(h.digest());
          if (got.some((b, i) => b !== req.ramSha256[i])) {
            throw refuse(
              "the RAM received differs from the source's (SHA-256): a write was missed",
            );
          }
        }
        // Pages written by hand: translations made from the old contents are dropped.
        t.machine.mem.noteWrite(0x8000_0000, ram.length);
        try {
          loadMachine(t.machine, req.harts, req.devices);
        } catch (e) {
          if (e instanceof SnapshotError) throw refuse(e.message);
          throw e;
        }
        t.clock.resumeAt(req.mtime);
        phase = "finishing";
        const loadMs = performance.now() - t0;
        const at = await t.takeOver(req);
        if (DEBUG) {
          console.error(
            `migrate: resumed ${(at.resumed - req.pausedAtUnixMs).toFixed(1)} ms, first batch ` +
              `${(at.first - req.pausedAtUnixMs).toFixed(1)} ms after the source's pause`,
          );
        }
        phase = "running";
        settle.ok();
        return { firstInstructionUnixMs: at.first, resumedUnixMs: at.resumed, loadMs };
      },
      abort: (req) => {
        if (phase === "finishing" || phase === "running") return {};
        settle.fail(new Error(`the source aborted the migration: ${req.reason}`));
        return {};
      },
    },
  });
  return { svc, done };
}

/** Names the first machine flag that differs (the engine may), or undefined. */
function flagsDiffer(a: string, b: string): string | undefined {
  const pa = JSON.parse(a) as Record<string, unknown>;
  const pb = JSON.parse(b) as Record<string, unknown>;
  for (const k of new Set([...Object.keys(pa), ...Object.keys(pb)])) {
    if (k === "engine") continue;
    const va = JSON.stringify(pa[k]), vb = JSON.stringify(pb[k]);
    if (va !== vb) return `${k} is ${va} there, ${vb} here`;
  }
  return undefined;
}
