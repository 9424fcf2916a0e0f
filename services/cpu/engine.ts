/**
 * The CPU service's execution engine interface: an interpreter, a block translator and a
 * KVM-backed engine all sit behind it, so the machine and device code never depend on which.
 */

/** Why `run()` returned. */
export enum StopReason {
  /** The instruction budget ran out; call again. */
  Budget = 0,
  /** The hart executed WFI with no interrupt pending: idle until one arrives. */
  Idle = 1,
  /** The machine asked to stop (poweroff/reboot/HTIF exit or an external request). */
  Halted = 2,
}

/** One hart's execution engine. */
export interface ExecutionEngine {
  /** Executes up to `budget` instructions; returns why it stopped. */
  run(budget: number): StopReason;
  /** Instructions retired so far (a double: exact up to 2^53). */
  readonly instret: number;
  /** Current pc as a JS number (exact for any address below 2^53). */
  readonly pc: number;
  /** True when an enabled interrupt is pending (used to end an idle wait). */
  interruptPending(): boolean;
}
