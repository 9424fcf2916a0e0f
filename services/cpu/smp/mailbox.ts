/**
 * The MMIO mailbox between hart Workers and the main thread, in a SharedArrayBuffer: one
 * queue, in the order harts posted to it, that the main thread serves in that order. A store is
 * posted (the hart goes on at once); a load waits (Atomics.wait) for its answer in the hart's
 * own answer slot, so it is served after every access posted before it by any hart. That keeps
 * the order a guest sees: a hart's UART store posted before its lock release is served before
 * the load of another hart that took the lock next (with a slot per hart served in hart order
 * it was not, and console bytes were lost). The main thread is rung through a doorbell word it
 * waits on with `Atomics.waitAsync`, so its event loop (bus clients, timers) keeps running.
 */
import type { PhysicalBus } from "../machine/mmio.ts";
import { MAX_HARTS } from "../guest_memory.ts";

/** Int32 words: the doorbell, the stop flag, the next ticket, the next ticket to serve. */
const DOORBELL = 0, STOP = 1, TAIL = 2, HEAD = 3;
/** Answer slots, one per hart: state, value, ok. */
const SLOT0 = 8, SLOT_WORDS = 4, STATE = 0, VALUE = 1, OK = 2;
/** Answer slot states. */
const WAITING = 0, ANSWERED = 1;
/** The queue: entries of sequence, op and hart, address, size, value. */
const RING0 = SLOT0 + SLOT_WORDS * MAX_HARTS, ENTRY_WORDS = 5, RING = 256;
const E_SEQ = 0, E_OP = 1, E_PADDR = 2, E_SIZE = 3, E_VALUE = 4;
const OP_LOAD = 0, OP_STORE = 1;
/** Bytes of a mailbox for up to MAX_HARTS harts. */
export const MAILBOX_BYTES = (RING0 + ENTRY_WORDS * RING) * 4;

/** The main thread's side: serves requests on the machine's bus, in the order posted. */
export class MailboxServer {
  readonly shared: SharedArrayBuffer;
  readonly #w: Int32Array;
  #head = 0;
  /** Requests served so far (loads and stores). */
  served = 0;

  constructor(readonly harts: number, shared = new SharedArrayBuffer(MAILBOX_BYTES)) {
    this.shared = shared;
    this.#w = new Int32Array(shared);
    // Entry k is free for ticket k.
    for (let k = 0; k < RING; k++) this.#w[RING0 + k * ENTRY_WORDS + E_SEQ] = k;
  }

  /** Serves every request posted so far, in order, on `bus`; returns how many there were. */
  serve(bus: PhysicalBus): number {
    const w = this.#w;
    let n = 0, h = this.#head;
    for (;;) {
      const e = RING0 + (h & (RING - 1)) * ENTRY_WORDS;
      // Filled for ticket h: sequence h + 1 (a later round's fill cannot be here yet).
      if (Atomics.load(w, e + E_SEQ) !== ((h + 1) | 0)) break;
      const op = w[e + E_OP], pa = w[e + E_PADDR] >>> 0, size = w[e + E_SIZE] as 1 | 2 | 4;
      const value = w[e + E_VALUE];
      Atomics.store(w, e + E_SEQ, (h + RING) | 0);
      h = (h + 1) | 0;
      Atomics.store(w, HEAD, h);
      if ((op & 0xff) === OP_LOAD) {
        const v = bus.load(pa, size);
        const s = SLOT0 + (op >>> 8) * SLOT_WORDS;
        w[s + VALUE] = v | 0;
        w[s + OK] = v < 0 ? 0 : 1;
        Atomics.store(w, s + STATE, ANSWERED);
        Atomics.notify(w, s + STATE);
      } else bus.store(pa, size, value);
      n++;
    }
    this.#head = h;
    // Harts draining their posted stores (or waiting for a free entry) wait on HEAD.
    if (n) Atomics.notify(w, HEAD);
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
 * ranges local devices serve (`local`: the CLINT and the PLIC, operated on shared state).
 */
export class MailboxBus implements PhysicalBus {
  readonly #w: Int32Array;
  readonly #hart: number;
  readonly #s: number;
  /** The ticket after this hart's last posted store, while it may not be served yet. */
  #pending = 0;
  #posting = false;
  /** Accesses that went through the mailbox, and how many of them were posted stores. */
  accesses = 0;
  posted = 0;

  constructor(
    shared: SharedArrayBuffer,
    hart: number,
    /** [base, end) of every mapped range: a store elsewhere faults without asking. */
    private readonly mapped: readonly (readonly [number, number])[],
    private readonly local: readonly {
      base: number;
      end: number;
      bus: PhysicalBus;
      /** Served only after this hart's posted stores (a PLIC complete after a device ack). */
      ordered?: boolean;
    }[] = [],
  ) {
    this.#w = new Int32Array(shared);
    this.#hart = hart;
    this.#s = SLOT0 + hart * SLOT_WORDS;
  }

  /** True once the main thread asked the harts to finish. */
  get stopping(): boolean {
    return Atomics.load(this.#w, STOP) !== 0;
  }

  /**
   * Waits until the main thread has served ticket `t` - 1, i.e. HEAD reached `t`. No spinning
   * first: on this 2-core host shared with other work, spinning on both sides measured 2-3x
   * slower than sleeping at once.
   */
  #waitHead(t: number): void {
    const w = this.#w;
    for (let h = Atomics.load(w, HEAD); ((h - t) | 0) < 0; h = Atomics.load(w, HEAD)) {
      Atomics.wait(w, HEAD, h, 100);
    }
  }

  /** Queues a request; returns the ticket after it. */
  #post(op: number, pa: number, size: number, value: number): number {
    const w = this.#w, t = Atomics.add(w, TAIL, 1);
    const e = RING0 + (t & (RING - 1)) * ENTRY_WORDS;
    // The entry is free once the main thread served ticket t - RING (it moves HEAD after).
    for (
      let h = Atomics.load(w, HEAD);
      Atomics.load(w, e + E_SEQ) !== t;
      h = Atomics.load(w, HEAD)
    ) {
      Atomics.wait(w, HEAD, h, 100);
    }
    this.accesses++;
    w[e + E_OP] = op | (this.#hart << 8);
    w[e + E_PADDR] = pa | 0;
    w[e + E_SIZE] = size;
    w[e + E_VALUE] = value | 0;
    Atomics.store(w, e + E_SEQ, (t + 1) | 0);
    Atomics.add(w, DOORBELL, 1);
    Atomics.notify(w, DOORBELL);
    return (t + 1) | 0;
  }

  /** Returns once the main thread has served every store this hart posted. */
  drain(): void {
    if (!this.#posting) return;
    this.#waitHead(this.#pending);
    this.#posting = false;
  }

  #local(pa: number, size: number) {
    for (const l of this.local) {
      if (pa >= l.base && pa + size <= l.end) {
        if (l.ordered) this.drain();
        return l.bus;
      }
    }
    return undefined;
  }

  load(pa: number, size: 1 | 2 | 4): number {
    const l = this.#local(pa, size);
    if (l) return l.load(pa, size);
    const w = this.#w, st = this.#s + STATE;
    Atomics.store(w, st, WAITING);
    this.#post(OP_LOAD, pa, size, 0);
    for (let v = Atomics.load(w, st); v !== ANSWERED; v = Atomics.load(w, st)) {
      Atomics.wait(w, st, v, 100);
    }
    // Served after every store posted before it, this hart's own ones included.
    this.#posting = false;
    return w[this.#s + OK] ? w[this.#s + VALUE] >>> 0 : -1;
  }

  store(pa: number, size: 1 | 2 | 4, value: number): boolean {
    const l = this.#local(pa, size);
    if (l) return l.store(pa, size, value);
    let mapped = false;
    for (const [b, e] of this.mapped) if (pa >= b && pa + size <= e) mapped = true;
    if (!mapped) return false;
    this.posted++;
    this.#pending = this.#post(OP_STORE, pa, size, value);
    this.#posting = true;
    return true;
  }
}
