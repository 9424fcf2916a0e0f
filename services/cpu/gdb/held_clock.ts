/**
 * Guest time that stands still while a debugger holds the hart, as QEMU's virtual clock does
 * while the VM is paused: a guest resumed after a long stop sees no jump in `mtime` (no
 * timer storm, no stall warnings).
 */
import type { VmClock } from "../machine/clock.ts";

/**
 * Wraps a clock; `hold()` freezes it, `release()` lets it run on from the frozen value.
 *
 * @example
 * ```ts
 * import { WallClock } from "../machine/clock.ts";
 * const clock = new HeldClock(new WallClock());
 * clock.hold();
 * const t = clock.now(); // stays t until release()
 * clock.release();
 * ```
 */
export class HeldClock implements VmClock {
  #inner: VmClock;
  #offset = 0;
  #heldAt: number | undefined;

  constructor(inner: VmClock) {
    this.#inner = inner;
  }

  now(): number {
    return this.#heldAt ?? this.#inner.now() - this.#offset;
  }

  /** True while frozen. */
  get held(): boolean {
    return this.#heldAt !== undefined;
  }

  hold(): void {
    if (this.#heldAt === undefined) this.#heldAt = this.now();
  }

  release(): void {
    if (this.#heldAt === undefined) return;
    this.#offset = this.#inner.now() - this.#heldAt;
    this.#heldAt = undefined;
  }
}
