/**
 * The UART's link to the console service: bytes the guest transmits are collected and
 * published as `ByteBatch`es on `vmesh.<vm>.console.out` (a batch when `maxBatch` bytes are
 * waiting or `flushMs` after the first waiting byte, never one message per byte; `seq` is the
 * stream offset of the batch's first byte); batches on `vmesh.<vm>.console.in` go to the
 * input callback (the UART's receive FIFO).
 */

import { type Bus, type BusSubscription, consoleMsgs, consoleSubject } from "@vmesh/bus";

/** Options of a {@link ConsoleBridge}. */
export interface ConsoleBridgeOptions {
  /** VM name. */
  vm: string;
  /** Publish once this many bytes are waiting (default 4096). */
  maxBatch?: number;
  /** Publish at most this long after the first waiting byte, in ms (default 5). */
  flushMs?: number;
}

/** Batches console output onto the bus and delivers console input. */
export class ConsoleBridge {
  readonly #out: string;
  readonly #in: string;
  readonly #max: number;
  readonly #flushMs: number;
  #buf: Uint8Array;
  #len = 0;
  #timer?: ReturnType<typeof setTimeout>;
  #sub?: BusSubscription;
  /** Stream offset of the next byte to publish. */
  seq = 0;
  /** Batches published so far. */
  batches = 0;
  /** Input bytes received so far. */
  inputBytes = 0;
  /** Input stream position after the last batch received (-1: none yet). */
  inputNext = -1;

  /** VM name. */
  readonly vm: string;

  constructor(readonly bus: Bus, opts: ConsoleBridgeOptions) {
    this.vm = opts.vm;
    this.#out = consoleSubject(opts.vm, "out");
    this.#in = consoleSubject(opts.vm, "in");
    this.#max = Math.max(1, opts.maxBatch ?? 4096);
    this.#flushMs = opts.flushMs ?? 5;
    this.#buf = new Uint8Array(this.#max);
  }

  /** True while console input is delivered (between `listen` and `close`). */
  get listening(): boolean {
    return this.#sub !== undefined;
  }

  /** Starts delivering console input to `onInput` (with each batch's stream position). */
  listen(onInput: (bytes: Uint8Array, seq: number) => void): void {
    this.#sub?.unsubscribe();
    this.#sub = this.bus.subscribe(consoleMsgs.byteBatch, this.#in, (b) => {
      this.inputBytes += b.data.length;
      this.inputNext = b.seq + b.data.length;
      if (b.data.length) onInput(b.data, b.seq);
    });
  }

  /** Queues guest output; publishes full batches now and the rest within `flushMs`. */
  write(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) {
      const n = Math.min(this.#max - this.#len, bytes.length - off);
      this.#buf.set(bytes.subarray(off, off + n), this.#len);
      this.#len += n;
      off += n;
      if (this.#len === this.#max) this.flush();
    }
    if (this.#len > 0 && this.#timer === undefined) {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.flush();
      }, this.#flushMs);
    }
  }

  /** Publishes whatever is waiting. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#len === 0) return;
    const data = this.#buf.slice(0, this.#len);
    const seq = this.seq;
    this.seq += this.#len;
    this.#len = 0;
    this.batches++;
    try {
      this.bus.publish(consoleMsgs.byteBatch, this.#out, { seq, data }, {
        vm: this.vm,
        device: "console",
      });
    } catch (e) {
      // The subscriber sees the gap through seq; the guest never waits on the console.
      this.bus.log(`cpu: console output of ${data.length} bytes lost: ${(e as Error).message}`);
    }
  }

  /** Publishes what is waiting, waits until the server has it, stops input. */
  async close(): Promise<void> {
    this.flush();
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    try {
      await this.bus.flush();
    } catch { /* connection already closed */ }
  }
}
