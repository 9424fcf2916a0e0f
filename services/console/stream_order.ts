/**
 * Keeps a console byte stream in order from `ByteBatch` messages: each batch says the
 * stream position of its first byte, so duplicates are trimmed and gaps are reported.
 * @module
 */

/** What to do with one received batch. */
export interface Ordered {
  /** The bytes not seen before, to pass on (empty for a pure duplicate). */
  bytes: Uint8Array;
  /** Bytes lost before this batch (0 when none). */
  gap: number;
}

/** Tracks the next expected stream position of one console direction. */
export class StreamOrder {
  /** The stream position of the next byte expected (-1 before the first batch). */
  next: number = -1;
  /** Total bytes reported lost so far. */
  lost: number = 0;

  /** Accepts a batch that starts at stream position `seq`. */
  accept(seq: number, data: Uint8Array): Ordered {
    // The first batch seen sets the position: a console that attaches late owes nothing.
    if (this.next < 0) this.next = seq;
    if (seq > this.next) {
      const gap = seq - this.next;
      this.lost += gap;
      this.next = seq + data.length;
      return { bytes: data, gap };
    }
    const skip = this.next - seq;
    if (skip >= data.length) return { bytes: data.subarray(data.length), gap: 0 };
    this.next = seq + data.length;
    return { bytes: data.subarray(skip), gap: 0 };
  }
}
