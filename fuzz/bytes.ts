/**
 * Input bytes as a stream of choices: a target reads its decisions from the input file (so a
 * saved `.bin` replays exactly), and a generator writes them. Past the end the reader gives
 * zeros, so every byte string is a valid input.
 */

/**
 * Reads little-endian choices from an input; zeros once exhausted.
 *
 * @example
 * ```ts
 * const r = new ByteReader(Uint8Array.of(3, 0x34, 0x12));
 * r.u8(); // 3
 * r.u16(); // 0x1234
 * r.u32(); // 0 (past the end)
 * ```
 */
export class ByteReader {
  #pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  /** True while unread bytes remain. */
  get more(): boolean {
    return this.#pos < this.bytes.length;
  }

  /** The next byte (0 past the end). */
  u8(): number {
    return this.#pos < this.bytes.length ? this.bytes[this.#pos++] : (this.#pos++, 0);
  }

  /** The next little-endian u16. */
  u16(): number {
    return this.u8() | (this.u8() << 8);
  }

  /** The next little-endian u32. */
  u32(): number {
    return (this.u16() | (this.u16() << 16)) >>> 0;
  }

  /** A value in [0, n) from the next byte (n ≤ 256) or u32 (larger n). */
  below(n: number): number {
    return n <= 256 ? this.u8() % n : this.u32() % n;
  }

  /** The next `n` bytes (zero-filled past the end). */
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    out.set(this.bytes.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    return out;
  }

  /** Everything not read yet. */
  rest(): Uint8Array {
    const out = this.bytes.subarray(Math.min(this.#pos, this.bytes.length));
    this.#pos = this.bytes.length;
    return out;
  }
}

/**
 * Builds an input from choices, mirroring {@link ByteReader}.
 *
 * @example
 * ```ts
 * new ByteWriter().u8(3).u16(0x1234).finish(); // Uint8Array [3, 0x34, 0x12]
 * ```
 */
export class ByteWriter {
  #out: number[] = [];

  /** Appends one byte. */
  u8(v: number): this {
    this.#out.push(v & 0xff);
    return this;
  }

  /** Appends a little-endian u16. */
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }

  /** Appends a little-endian u32. */
  u32(v: number): this {
    return this.u16(v).u16(v >>> 16);
  }

  /** Appends raw bytes. */
  put(bytes: Uint8Array): this {
    for (const b of bytes) this.#out.push(b);
    return this;
  }

  /** The input built so far. */
  finish(): Uint8Array {
    return Uint8Array.from(this.#out);
  }
}

/**
 * Mutates a copy of `template` the way byte fuzzers do: flips, interesting values, splices,
 * truncation and growth; `hot` lists offsets (header fields) hit more often.
 *
 * @example
 * ```ts
 * const next = mutate(template, new Prng(1), [16, 18]);
 * ```
 */
export function mutate(
  template: Uint8Array,
  r: { below(n: number): number; next(): number; interesting32(): number },
  hot: readonly number[] = [],
): Uint8Array {
  let out = template.slice();
  const edits = 1 + r.below(8);
  for (let e = 0; e < edits; e++) {
    if (out.length === 0) out = new Uint8Array(1 + r.below(64));
    const at = hot.length && r.below(2) === 0
      ? Math.min(hot[r.below(hot.length)], out.length - 1)
      : r.below(out.length);
    switch (r.below(7)) {
      case 0:
        out[at] ^= 1 << r.below(8);
        break;
      case 1:
        out[at] = r.next();
        break;
      case 2: {
        // A 32-bit edge value over a field (little- or big-endian alike: both are tried).
        const v = r.interesting32();
        const dv = new DataView(out.buffer);
        if (at + 4 <= out.length) dv.setUint32(at, v, r.below(2) === 0);
        break;
      }
      case 3: {
        const v = r.interesting32();
        const dv = new DataView(out.buffer);
        if (at + 8 <= out.length) {
          dv.setUint32(at, v, true);
          dv.setUint32(at + 4, r.below(3) === 0 ? r.interesting32() : 0, true);
        }
        break;
      }
      case 4:
        if (r.below(4) === 0) out = out.slice(0, r.below(out.length + 1));
        break;
      case 5: {
        // Copy a run of the input over another place in it.
        const from = r.below(out.length), n = Math.min(1 + r.below(64), out.length - from);
        out.copyWithin(at, from, from + n);
        break;
      }
      default: {
        if (out.length < 1 << 20 && r.below(4) === 0) {
          const grown = new Uint8Array(out.length + 1 + r.below(256));
          grown.set(out);
          for (let i = out.length; i < grown.length; i++) grown[i] = r.next();
          out = grown;
        }
      }
    }
  }
  return out;
}
