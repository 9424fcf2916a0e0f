/**
 * The clock of a CPU service started with `--incoming`: wall-clock ticks that restart at the
 * source's `mtime` when the migration finishes, so the guest's time never goes back and its
 * downtime looks like a pause (as QEMU's virtual clock stopped while the VM is).
 * @module
 */
import { TIMEBASE_HZ, type VmClock } from "../machine/clock.ts";

/**
 * Ticks since the last `resumeAt` (or construction), plus the ticks given to it.
 *
 * @example
 * ```ts
 * const clock = new IncomingClock();
 * clock.resumeAt(5_000_000); // the source stood at mtime 0.5 s
 * clock.now() >= 5_000_000; // true
 * ```
 */
export class IncomingClock implements VmClock {
  #base = 0;
  #t0 = performance.now();
  /** Current `mtime`. */
  now(): number {
    return this.#base + Math.floor((performance.now() - this.#t0) * (TIMEBASE_HZ / 1000));
  }
  /** Goes on from `ticks` from now on. */
  resumeAt(ticks: number): void {
    this.#base = ticks;
    this.#t0 = performance.now();
  }
}
