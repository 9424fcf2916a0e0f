/**
 * The harness's deterministic generator: xorshift32 seeded through a SplitMix-style mix, so
 * (seed, target, input index) names one input forever and a run can resume or replay it.
 */

/**
 * Mixes 32-bit words into one well-spread 32-bit seed (never 0: xorshift's fixed point).
 *
 * @example
 * ```ts
 * const seed = mixSeed(1, hashName("elf"), 42); // input 42 of target elf under seed 1
 * ```
 */
export function mixSeed(...words: number[]): number {
  let h = 0x9e3779b9;
  for (const w of words) {
    h = Math.imul(h ^ (w >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return (h >>> 0) || 1;
}

/**
 * A 32-bit hash of a string (FNV-1a), for mixing a target's name into its seeds.
 *
 * @example
 * ```ts
 * hashName("gdb"); // the same number on every run
 * ```
 */
export function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * xorshift32 with helpers for building inputs.
 *
 * @example
 * ```ts
 * const r = new Prng(42);
 * const size = r.pick([1, 2, 4]);
 * const bytes = r.bytes(16);
 * ```
 */
export class Prng {
  #x: number;

  constructor(seed: number) {
    this.#x = (seed >>> 0) || 1;
  }

  /** The next 32-bit unsigned value. */
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.#x = x >>> 0);
  }

  /** A value in [0, n) (n ≤ 2^32). */
  below(n: number): number {
    return n <= 1 ? 0 : Math.floor((this.next() / 0x1_0000_0000) * n);
  }

  /** True with probability 1/n. */
  oneIn(n: number): boolean {
    return this.below(n) === 0;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /** A 32-bit value skewed towards edge cases (0, all ones, powers of two, small numbers). */
  interesting32(): number {
    switch (this.below(6)) {
      case 0:
        return 0;
      case 1:
        return 0xffff_ffff;
      case 2:
        return (2 ** this.below(32)) >>> 0;
      case 3:
        return this.below(64);
      case 4:
        return (0x1_0000_0000 - 1 - this.below(64)) >>> 0;
      default:
        return this.next();
    }
  }
}
