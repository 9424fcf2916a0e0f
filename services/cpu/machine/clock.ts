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
  constructor(private readonly instret: () => number, private readonly ticksPerInstruction = 0.1) {}
  /** Current `mtime` derived from retired instructions. */
  now(): number {
    return Math.floor(this.instret() * this.ticksPerInstruction);
  }
}
