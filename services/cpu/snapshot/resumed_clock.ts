/**
 * The clock of a restored VM: wall-clock time that starts where the snapshot's clock stood,
 * so `mtime`/`time` never go back and the guest sees the time it was stored as a pause.
 * @module
 */
import { TIMEBASE_HZ, type VmClock } from "../machine/clock.ts";

/**
 * Wall-clock ticks since construction, plus `startTicks`.
 *
 * @example
 * ```ts
 * const clock = new ResumedClock(5_000_000); // the snapshot was taken at mtime 0.5 s
 * clock.now() >= 5_000_000; // true
 * ```
 */
export class ResumedClock implements VmClock {
  #start = performance.now();
  constructor(readonly startTicks: number) {}
  /** Current `mtime`. */
  now(): number {
    return this.startTicks + Math.floor((performance.now() - this.#start) * (TIMEBASE_HZ / 1000));
  }
}
