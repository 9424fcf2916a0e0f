/**
 * A wall clock every thread reads alike: ticks since an epoch on the shared time line
 * (`performance.timeOrigin + performance.now()`), so hart Workers and the main thread agree on
 * `mtime` (each Worker's `performance.now()` counts from its own start).
 */
import { TIMEBASE_HZ, type VmClock } from "../machine/clock.ts";

/** Milliseconds on the time line all threads of this process share. */
export function sharedNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Wall-clock `mtime` since `epochMs` (default: now), the same on every thread. */
export class EpochClock implements VmClock {
  constructor(readonly epochMs: number = sharedNowMs()) {}
  /** Current `mtime`: wall-clock ticks since the epoch. */
  now(): number {
    return Math.floor((sharedNowMs() - this.epochMs) * (TIMEBASE_HZ / 1000));
  }
}
