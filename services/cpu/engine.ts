/**
 * The CPU service's execution engine interface: an interpreter, a block translator and a
 * KVM-backed engine all sit behind it, so the machine and device code never depend on which.
 * Guest memory is injected (the engine is built over a `GuestMemory` it is given), and the
 * engine's state is one saved record (`save()`/`load()`).
 */

/** Why `run()` returned. */
export enum StopReason {
  /** The instruction budget ran out; call again. */
  Budget = 0,
  /** The hart executed WFI with no interrupt pending: idle until one arrives. */
  Idle = 1,
  /** The machine asked to stop (poweroff/reboot/HTIF exit, `kick()` or an external request). */
  Halted = 2,
}

/** A saved engine state: plain and structured-clone-able (sent to Workers, written to disk). */
export interface EngineSnapshot {
  /** Which engine state format (e.g. "rv64-hart"). */
  kind: string;
  /** Format version. */
  version: number;
  /** The state bytes. */
  bytes: Uint8Array;
}

/**
 * One hart's execution engine.
 *
 * @example
 * ```ts
 * function runSome(engine: ExecutionEngine): StopReason {
 *   engine.reset(0x8000_0000);
 *   return engine.run(100_000); // Budget, Idle or Halted
 * }
 * ```
 */
export interface ExecutionEngine {
  /** Executes up to `budget` instructions; returns why it stopped. */
  run(budget: number): StopReason;
  /**
   * Makes a running `run()` return soon with Halted (callable from another thread: it is an
   * `Atomics.store` on the hart's EXIT_REQUEST word). The request stays until the machine
   * clears it.
   */
  kick(): void;
  /** Resets the hart to M-mode at `pc` with architectural reset values. */
  reset(pc: number): void;
  /** mtime value of the engine's own next timer event (Sstc), Infinity when none. */
  nextDeadline(): number;
  /** A copy of the engine's architectural state (between `run()` calls). */
  save(): EngineSnapshot;
  /** Restores what `save()` produced, possibly on another engine over other memory. */
  load(state: EngineSnapshot): void;
  /** Instructions retired so far (a double: exact up to 2^53). */
  readonly instret: number;
  /** Current pc as a JS number (exact for any address below 2^53). */
  readonly pc: number;
  /** True when an enabled interrupt is pending (used to end an idle wait). */
  interruptPending(): boolean;
}
