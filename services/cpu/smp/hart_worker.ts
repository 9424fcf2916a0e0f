/**
 * A hart Worker (`--smp-threads`): builds one hart over the machine's shared memory and runs
 * it until the main thread says stop. The CLINT and the PLIC are operated here on their shared
 * state; every other MMIO access goes through the mailbox to the main thread (stores posted). WFI sleeps in `Atomics.wait`
 * on the hart's `mip` word (devices and other harts notify it) or until its next timer.
 */
import { GuestMemory, HartLayout } from "../guest_memory.ts";
import { Hart } from "../hart/mod.ts";
import { StopReason } from "../engine.ts";
import { Clint } from "../devices/clint.ts";
import { Plic } from "../devices/plic.ts";
import { HartIrqLines } from "../machine/hart_irq.ts";
import { TIMEBASE_HZ } from "../machine/clock.ts";
import { MailboxBus } from "./mailbox.ts";
import { EpochClock } from "./epoch_clock.ts";
import { CodeSync } from "./code_sync.ts";
import type { HartWorkerDone, HartWorkerStart } from "./hart_threads.ts";

/** Longest WFI sleep, ms, before the hart looks at its timers again. */
const MAX_SLEEP_MS = 50;

/** Runs the hart `start` describes; returns what the main thread is told at the end. */
export function runHartWorker(start: HartWorkerStart): HartWorkerDone {
  const mem = new GuestMemory(start.ramSize, start.memory, start.codePages);
  const clock = new EpochClock(start.epochMs);
  const lines = new HartIrqLines(mem);
  const clint = new Clint(start.harts, clock, lines, start.clintShared);
  const plic = new Plic(start.harts, start.plicNdev, lines, start.plicShared);
  const bus = new MailboxBus(start.mailbox, start.hartId, start.mapped, [{
    base: start.clintBase,
    end: start.clintBase + start.clintSize,
    bus: {
      load: (pa, size) => clint.read(pa - start.clintBase, size) >>> 0,
      store: (pa, size, v) => (clint.write(pa - start.clintBase, size, v), true),
    },
  }, {
    base: start.plicBase,
    end: start.plicBase + start.plicSize,
    bus: {
      load: (pa, size) => plic.read(pa - start.plicBase, size) >>> 0,
      store: (pa, size, v) => (plic.write(pa - start.plicBase, size, v), true),
    },
    // A completion must come after the device's ack this hart posted, or the line still
    // high re-pends the source (a spurious interrupt).
    ordered: true,
  }]);
  const id = start.hartId;
  const code = new CodeSync(start.harts, mem.codePages.length, start.codeSync);
  const kick = (h: number) => mem.kick(h);
  // Set before the hart: its translator chains its own invalidation after this.
  mem.onCodeWrite = (page) => code.codeWritten(mem.codePages, page, id, kick);
  // Pages this hart made code from while another hart may still store to them unseen (its
  // store TLB eviction not taken yet), with the other harts' epochs after the post.
  const suspects = new Map<number, number[]>();
  mem.onEvictStores = (page) => {
    code.storesToEvict(page, id, kick);
    const epochs = code.epochs(id);
    // No other hart running (all asleep, or none): none can store to the page before it drains.
    if (epochs.some((e) => e >= 0)) suspects.set(page, epochs);
  };
  const hart = new Hart({
    mem,
    hartId: id,
    bus,
    clock,
    engine: start.engine,
    sharedAtomics: true,
    // This thread never returns to its event loop while the hart runs: an async compile would
    // never finish (measured: the md5sum workload 5x slower than the harts-in-turn translator).
    translator: { async: false },
  });
  hart.load(start.state);
  const jit = hart.translator;
  // FENCE.I: code another hart may have written unseen (a suspect page) goes too, at the loop
  // top (not inside the translated code that called the interpreter for the FENCE.I); a page
  // stays suspect until every other hart has taken its eviction.
  let fenceI = false, fenceIDrops = 0;
  if (jit) {
    hart.onFenceI = () => {
      fenceI = true;
      hart.kick();
    };
  }
  const drain = () => {
    code.drain(id, (page) => hart.evictStorePage(page), (page) => jit?.invalidatePage(page));
    if (fenceI) {
      fenceI = false;
      for (const [page, epochs] of suspects) {
        fenceIDrops++;
        jit?.invalidatePage(page);
        if (code.evicted(epochs)) suspects.delete(page);
      }
    }
  };
  const i32 = mem.i32;
  const mipIdx = (mem.hartBase(id) + HartLayout.MIP) >> 2;
  const exitIdx = (mem.hartBase(id) + HartLayout.EXIT_REQUEST) >> 2;
  let sleeps = 0;
  while (!bus.stopping) {
    drain();
    clint.tickHart(id);
    const reason = hart.run(start.batch);
    if (reason === StopReason.Halted) {
      // A kick: the loop top looks at the stop flag.
      Atomics.store(i32, exitIdx, 0);
      continue;
    }
    if (reason !== StopReason.Idle) continue;
    // WFI: sleep until an interrupt is pending (the spec lets WFI end for any reason).
    while (!bus.stopping) {
      drain();
      clint.tickHart(id);
      if (hart.interruptPending()) break;
      const mip = Atomics.load(i32, mipIdx);
      const now = clock.now();
      const deadline = Math.min(clint.deadline(id), hart.nextDeadline());
      const ms = deadline > now
        ? Math.min((deadline - now) / (TIMEBASE_HZ / 1000), MAX_SLEEP_MS)
        : MAX_SLEEP_MS;
      sleeps++;
      code.sleeping(id, true);
      Atomics.wait(i32, mipIdx, mip, ms);
      code.sleeping(id, false); // the loop drains before the hart runs again
    }
  }
  bus.drain();
  const st = jit?.stats;
  return {
    hartId: id,
    instret: hart.instret,
    mmio: bus.accesses,
    posted: bus.posted,
    sleeps,
    fenceIDrops,
    jit: st && `${st.regions} regions, ${st.invalidations} invalidations, ${st.flushes} flushes`,
  };
}

// As a Worker: one start message, one done message.
const self_ = globalThis as unknown as {
  onmessage: ((e: MessageEvent<HartWorkerStart>) => void) | null;
  postMessage(m: unknown): void;
  close(): void;
};
if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== "undefined") {
  self_.onmessage = (e) => {
    let done: HartWorkerDone;
    try {
      done = runHartWorker(e.data);
    } catch (err) {
      done = {
        hartId: e.data.hartId,
        instret: 0,
        mmio: 0,
        posted: 0,
        sleeps: 0,
        fenceIDrops: 0,
        error: err instanceof Error ? err.stack ?? err.message : String(err),
      };
    }
    self_.postMessage(done);
  };
}
