/**
 * A hart Worker (`--smp-threads`): builds one hart over the machine's shared memory and runs
 * it until the main thread says stop. The CLINT is operated here on its shared state; every
 * other MMIO access goes through the mailbox to the main thread. WFI sleeps in `Atomics.wait`
 * on the hart's `mip` word (devices and other harts notify it) or until its next timer.
 */
import { GuestMemory, HartLayout } from "../guest_memory.ts";
import { Hart } from "../hart/mod.ts";
import { StopReason } from "../engine.ts";
import { Clint } from "../devices/clint.ts";
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
  const bus = new MailboxBus(start.mailbox, start.hartId, start.mapped, {
    base: start.clintBase,
    end: start.clintBase + start.clintSize,
    bus: {
      load: (pa, size) => clint.read(pa - start.clintBase, size) >>> 0,
      store: (pa, size, v) => (clint.write(pa - start.clintBase, size, v), true),
    },
  });
  const id = start.hartId;
  const code = new CodeSync(start.harts, mem.codePages.length, start.codeSync);
  const kick = (h: number) => mem.kick(h);
  // Set before the hart: its translator chains its own invalidation after this.
  mem.onCodeWrite = (page) => code.codeWritten(mem.codePages, page, id, kick);
  mem.onEvictStores = (page) => code.storesToEvict(page, id, kick);
  const hart = new Hart({ mem, hartId: id, bus, clock, engine: start.engine, sharedAtomics: true });
  hart.load(start.state);
  const jit = hart.translator;
  // FENCE.I: code other harts wrote without this thread seeing the store (before its store
  // TLB eviction arrived) must go too; the flush happens at the loop top (not inside the
  // translated code that called the interpreter for the FENCE.I).
  let fenceI = false;
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
      jit?.flushAll();
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
      clint.tickHart(id);
      if (hart.interruptPending()) break;
      const mip = Atomics.load(i32, mipIdx);
      const now = clock.now();
      const deadline = Math.min(clint.deadline(id), hart.nextDeadline());
      const ms = deadline > now
        ? Math.min((deadline - now) / (TIMEBASE_HZ / 1000), MAX_SLEEP_MS)
        : MAX_SLEEP_MS;
      sleeps++;
      Atomics.wait(i32, mipIdx, mip, ms);
    }
  }
  return { hartId: id, instret: hart.instret, mmio: bus.accesses, sleeps };
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
        sleeps: 0,
        error: err instanceof Error ? err.stack ?? err.message : String(err),
      };
    }
    self_.postMessage(done);
  };
}
