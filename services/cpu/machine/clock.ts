/**
 * The one source of time for a VM (design rule: time and entropy are injectable so a run can
 * be made deterministic and recorded/replayed).
 */

/** Timebase of `mtime`/`time`, as on QEMU `virt`: 10 MHz. */
export const TIMEBASE_HZ = 10_000_000;

/** A VM clock: `mtime` ticks at `TIMEBASE_HZ`. */
export interface VmClock {
  /** Current `mtime` in ticks (a double; exact for centuries). */
  now(): number;
  /**
   * Virtual clocks only: jumps forward to `ticks` (an idle machine skips to its next timer
   * deadline instead of waiting, which wall-clock time cannot do).
   */
  advanceTo?(ticks: number): void;
}

/** Wall-clock time since the VM was created. */
export class WallClock implements VmClock {
  #start = performance.now();
  /** Current `mtime`: wall-clock ticks since construction. */
  now(): number {
    return Math.floor((performance.now() - this.#start) * (TIMEBASE_HZ / 1000));
  }
}

/** Deterministic time driven by retired instructions (`ticksPerInstruction` ticks each). */
export class InstructionClock implements VmClock {
  /** Ticks skipped while the machine was idle (part of a saved run: see `Machine.saveLoop`). */
  skipped = 0;
  constructor(private readonly instret: () => number, private readonly ticksPerInstruction = 0.1) {}
  /** Current `mtime` derived from retired instructions. */
  now(): number {
    return Math.floor(this.instret() * this.ticksPerInstruction) + this.skipped;
  }
  /** Skips forward to `ticks` (no-op when already there). */
  advanceTo(ticks: number): void {
    const now = this.now();
    if (ticks > now) this.skipped += Math.ceil(ticks - now);
  }
}
