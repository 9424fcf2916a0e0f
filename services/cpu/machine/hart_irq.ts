/**
 * Interrupt wires into the harts: devices set and clear bits of a hart's `mip` word in shared
 * memory with Atomics, so a hart running in another Worker sees them at its next check.
 */
import { type GuestMemory, HartLayout } from "../guest_memory.ts";

/** Sets or clears `mip` bits (`Irq` constants) of one hart. */
export class HartIrqLines {
  readonly #i32: Int32Array;
  readonly #mem: GuestMemory;

  constructor(mem: GuestMemory) {
    this.#mem = mem;
    this.#i32 = mem.i32;
  }

  /** Drives `bits` of hart `hart`'s mip to `level`. */
  set(hart: number, bits: number, level: boolean): void {
    const index = (this.#mem.hartBase(hart) + HartLayout.MIP) >> 2;
    if (level) {
      // A hart Worker sleeping in WFI waits on this word: wake it when a bit comes up.
      if ((Atomics.or(this.#i32, index, bits) & bits) !== bits) Atomics.notify(this.#i32, index);
    } else Atomics.and(this.#i32, index, ~bits);
  }

  /** Current mip word of hart `hart`. */
  get(hart: number): number {
    return Atomics.load(this.#i32, (this.#mem.hartBase(hart) + HartLayout.MIP) >> 2);
  }
}
