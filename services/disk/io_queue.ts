/**
 * Runs async operations one at a time, in arrival order. File I/O here is seek + read/write
 * on one handle, which two interleaved requests would corrupt.
 * @module
 */

/** A FIFO of async operations; each starts after the previous one settled. */
export class IoQueue {
  #tail: Promise<unknown> = Promise.resolve();

  /** Queues `op` and resolves/rejects with its result. */
  run<T>(op: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(op);
    this.#tail = result.catch(() => {});
    return result;
  }
}
