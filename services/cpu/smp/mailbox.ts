/**
 * The MMIO mailbox between hart Workers and the main thread, in a SharedArrayBuffer: one slot
 * per hart. A load waits (Atomics.wait) for the main thread's answer, and so does a store (a
 * posted store could be overtaken by the hart's later memory stores: see `store`). The main
 * thread is rung through a doorbell word it waits on with `Atomics.waitAsync`, so its event loop
 * (bus clients, timers) keeps running.
 */
import type { PhysicalBus } from "../machine/mmio.ts";
import { MAX_HARTS } from "../guest_memory.ts";

/** Int32 words: the doorbell, the stop flag, then a slot per hart. */
const DOORBELL = 0, STOP = 1, SLOT0 = 8, SLOT_WORDS = 8;
/** Slot words. */
const STATE = 0, OP = 1, PADDR = 2, SIZE = 3, VALUE = 4, OK = 5;
/** Slot states: free, a request waiting for the main thread, a load answered. */
const FREE = 0, ASKED = 1, ANSWERED = 2;
const OP_LOAD = 0, OP_STORE = 1;
/** Bytes of a mailbox for up to MAX_HARTS harts. */
export const MAILBOX_BYTES = (SLOT0 + SLOT_WORDS * MAX_HARTS) * 4;

/** The main thread's side: serves requests on the machine's bus. */
export class MailboxServer {
  readonly shared: SharedArrayBuffer;
  readonly #w: Int32Array;
  /** Requests served so far (loads and stores). */
  served = 0;

  constructor(readonly harts: number, shared = new SharedArrayBuffer(MAILBOX_BYTES)) {
    this.shared = shared;
    this.#w = new Int32Array(shared);
  }

  /** Serves every pending request on `bus`; returns how many there were. */
  serve(bus: PhysicalBus): number {
    const w = this.#w;
    let n = 0;
    for (let h = 0; h < this.harts; h++) {
      const s = SLOT0 + h * SLOT_WORDS;
      if (Atomics.load(w, s + STATE) !== ASKED) continue;
      const pa = w[s + PADDR] >>> 0, size = w[s + SIZE] as 1 | 2 | 4;
      if (w[s + OP] === OP_LOAD) {
        const v = bus.load(pa, size);
        w[s + VALUE] = v | 0;
        w[s + OK] = v < 0 ? 0 : 1;
        Atomics.store(w, s + STATE, ANSWERED);
      } else {
        bus.store(pa, size, w[s + VALUE]);
        Atomics.store(w, s + STATE, FREE);
      }
      Atomics.notify(w, s + STATE);
      n++;
    }
    this.served += n;
    return n;
  }

  /** Resolves when a hart rings (or after `ms`); `seen` is the doorbell read before serving. */
  async waitRing(seen: number, ms: number): Promise<void> {
    const r = Atomics.waitAsync(this.#w, DOORBELL, seen, ms);
    if (r.async) await r.value;
  }

  /** The doorbell's value (read it before `serve`, then `waitRing` with it). */
  doorbell(): number {
    return Atomics.load(this.#w, DOORBELL);
  }

  /** Wakes a `waitRing` from the main thread itself (console input, a stop). */
  ring(): void {
    Atomics.add(this.#w, DOORBELL, 1);
    Atomics.notify(this.#w, DOORBELL);
  }

  /** Tells every hart Worker to finish. */
  setStop(): void {
    Atomics.store(this.#w, STOP, 1);
  }
}

/**
 * A hart Worker's side: a `PhysicalBus` whose accesses go to the main thread, except the
 * ranges a local device serves (`local`: the CLINT, operated on shared state).
 */
export class MailboxBus implements PhysicalBus {
  readonly #w: Int32Array;
  readonly #s: number;
  /** Accesses that went through the mailbox. */
  accesses = 0;

  constructor(
    shared: SharedArrayBuffer,
    hart: number,
    /** [base, end) of every mapped range: a store elsewhere faults without asking. */
    private readonly mapped: readonly (readonly [number, number])[],
    private readonly local?: { base: number; end: number; bus: PhysicalBus },
  ) {
    this.#w = new Int32Array(shared);
    this.#s = SLOT0 + hart * SLOT_WORDS;
  }

  /** True once the main thread asked the harts to finish. */
  get stopping(): boolean {
    return Atomics.load(this.#w, STOP) !== 0;
  }

  /**
   * Waits until this hart's slot is in state `want`. No spinning first: on this 2-core host
   * shared with other work, spinning on both sides measured 2-3x slower than sleeping at once.
   */
  #waitFor(want: number): void {
    const w = this.#w, st = this.#s + STATE;
    for (let v = Atomics.load(w, st); v !== want; v = Atomics.load(w, st)) {
      Atomics.wait(w, st, v, 100);
    }
  }

  #ask(op: number, pa: number, size: number, value: number): void {
    const w = this.#w, s = this.#s;
    this.#waitFor(FREE);
    this.accesses++;
    w[s + OP] = op;
    w[s + PADDR] = pa | 0;
    w[s + SIZE] = size;
    w[s + VALUE] = value | 0;
    Atomics.store(w, s + STATE, ASKED);
    Atomics.add(w, DOORBELL, 1);
    Atomics.notify(w, DOORBELL);
  }

  load(pa: number, size: 1 | 2 | 4): number {
    const l = this.local;
    if (l && pa >= l.base && pa + size <= l.end) return l.bus.load(pa, size);
    const w = this.#w, st = this.#s + STATE;
    this.#ask(OP_LOAD, pa, size, 0);
    this.#waitFor(ANSWERED);
    const ok = w[this.#s + OK], value = w[this.#s + VALUE];
    Atomics.store(w, st, FREE);
    return ok ? value >>> 0 : -1;
  }

  store(pa: number, size: 1 | 2 | 4, value: number): boolean {
    const l = this.local;
    if (l && pa >= l.base && pa + size <= l.end) return l.bus.store(pa, size, value);
    let mapped = false;
    for (const [b, e] of this.mapped) if (pa >= b && pa + size <= e) mapped = true;
    if (!mapped) return false;
    this.#ask(OP_STORE, pa, size, value);
    // Not posted: a store still in the slot could be overtaken by this hart's later memory
    // stores (a lock release), so another hart would see the device before it (a UART whose
    // FIFO looked empty took more bytes and dropped some: lost console output).
    this.#waitFor(FREE);
    return true;
  }
}
