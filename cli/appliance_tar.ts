/**
 * The POSIX ustar container of an appliance (`./vmesh export`/`import`): a writer that streams
 * members into a file and a reader that walks them in order, checking every header's checksum
 * and saying where a file is truncated. Sizes past 8 GiB use GNU's base-256 size field, as GNU
 * tar does, so `tar tvf vm.tar` lists any appliance.
 * @module
 */

/** Bytes of a tar block (headers, padding, the end marker). */
export const BLOCK = 512;

/** A tar file that cannot be read: what is wrong and where. */
export class TarError extends Error {}

const enc = new TextEncoder();
const dec = new TextDecoder();

function putString(h: Uint8Array, at: number, len: number, s: string): void {
  const b = enc.encode(s);
  if (b.length > len) throw new TarError(`tar field too long: ${s}`);
  h.set(b, at);
}

function putOctal(h: Uint8Array, at: number, len: number, n: number): void {
  putString(h, at, len, n.toString(8).padStart(len - 1, "0") + "\0");
}

/** The 12-byte size field: octal below 8 GiB, GNU base-256 above. */
function putSize(h: Uint8Array, at: number, n: number): void {
  if (n < 8 ** 11) return putOctal(h, at, 12, n);
  h[at] = 0x80;
  for (let i = 11, v = n; i >= 1; i--, v = Math.floor(v / 256)) h[at + i] = v % 256;
}

function readSize(h: Uint8Array, at: number): number {
  if (h[at] & 0x80) {
    let v = 0;
    for (let i = 1; i < 12; i++) v = v * 256 + h[at + i];
    return v;
  }
  return readOctal(h, at, 12);
}

function readOctal(h: Uint8Array, at: number, len: number): number {
  const s = dec.decode(h.subarray(at, at + len)).replace(/[\0 ]+$/, "").replace(/^ +/, "");
  if (!/^[0-7]*$/.test(s)) throw new TarError(`bad octal field ${JSON.stringify(s)}`);
  return s === "" ? 0 : parseInt(s, 8);
}

function checksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
  return sum;
}

/** A ustar header block of a regular file `name` of `size` bytes. */
export function tarHeader(name: string, size: number, mtimeS: number): Uint8Array {
  const h = new Uint8Array(BLOCK);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, 0o644);
  putOctal(h, 108, 8, 0);
  putOctal(h, 116, 8, 0);
  putSize(h, 124, size);
  putOctal(h, 136, 12, Math.floor(mtimeS));
  h[156] = "0".charCodeAt(0);
  putString(h, 257, 6, "ustar\0");
  putString(h, 263, 2, "00");
  putString(h, 265, 32, "vmesh");
  putString(h, 297, 32, "vmesh");
  putString(h, 148, 8, checksum(h).toString(8).padStart(6, "0") + "\0 ");
  return h;
}

/** Streams tar members into an open file; `finish()` writes the end marker. */
export class TarWriter {
  #out: Deno.FsFile;
  #mtime = Date.now() / 1000;
  /** Bytes written so far. */
  written = 0;

  constructor(out: Deno.FsFile) {
    this.#out = out;
  }

  async #write(b: Uint8Array): Promise<void> {
    for (let o = 0; o < b.length;) o += await this.#out.write(b.subarray(o));
    this.written += b.length;
  }

  /** Adds member `name` whose `size` bytes `data` yields (a different count is an error). */
  async add(
    name: string,
    size: number,
    data: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ): Promise<void> {
    await this.#write(tarHeader(name, size, this.#mtime));
    let n = 0;
    const parts = data instanceof Uint8Array ? [data] : data;
    for await (const part of parts) {
      n += part.length;
      if (n > size) throw new TarError(`member ${name}: more than the ${size} bytes announced`);
      await this.#write(part);
    }
    if (n !== size) throw new TarError(`member ${name}: ${n} bytes, not the ${size} announced`);
    const pad = (BLOCK - size % BLOCK) % BLOCK;
    if (pad) await this.#write(new Uint8Array(pad));
  }

  /** Writes the two zero blocks that end a tar file. */
  async finish(): Promise<void> {
    await this.#write(new Uint8Array(2 * BLOCK));
  }
}

/** One member met by {@link TarReader}. */
export interface TarEntry {
  name: string;
  size: number;
  /** Offset of its header in the file. */
  offset: number;
}

/** Reads the members of a tar file in order, each header's checksum checked. */
export class TarReader {
  #file: Deno.FsFile;
  #buf = new Uint8Array(1 << 20);
  #start = 0;
  #end = 0;
  #pos = 0;
  #pending = 0;
  #eof = false;

  constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /** Up to `max` bytes (at least one unless at the end of the file). */
  async #read(max: number): Promise<Uint8Array> {
    if (this.#start === this.#end && !this.#eof) {
      const n = await this.#file.read(this.#buf);
      if (n === null) this.#eof = true;
      else {
        this.#start = 0;
        this.#end = n;
      }
    }
    const n = Math.min(max, this.#end - this.#start);
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    this.#pos += n;
    return out;
  }

  /** Exactly `n` bytes, or a TarError naming `what` if the file ends first. */
  async #exact(n: number, what: string): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    for (let o = 0; o < n;) {
      const at = this.#pos;
      const part = await this.#read(n - o);
      if (!part.length) throw new TarError(`the file is truncated at byte ${at} (in ${what})`);
      out.set(part, o);
      o += part.length;
    }
    return out;
  }

  /** The next member, or null at the end marker; the previous member's data must be read. */
  async next(): Promise<TarEntry | null> {
    if (this.#pending) throw new TarError("the previous member was not read to its end");
    const offset = this.#pos;
    const h = await this.#exact(BLOCK, "a member header");
    if (h.every((b) => b === 0)) return null;
    const stored = readOctal(h, 148, 8);
    if (stored !== checksum(h)) {
      throw new TarError(`the member header at byte ${offset} is corrupt (checksum mismatch)`);
    }
    const type = String.fromCharCode(h[156]);
    const name = dec.decode(h.subarray(0, 100)).replace(/\0.*$/s, "");
    if (type !== "0" && type !== "\0") {
      throw new TarError(`member ${name} at byte ${offset} is not a regular file (type ${type})`);
    }
    const size = readSize(h, 124);
    this.#pending = size;
    return { name, size, offset };
  }

  /** The current member's data in parts, then its padding skipped. */
  async *data(what: string): AsyncGenerator<Uint8Array> {
    const size = this.#pending;
    while (this.#pending) {
      const at = this.#pos;
      const part = await this.#read(this.#pending);
      if (!part.length) throw new TarError(`the file is truncated at byte ${at} (in ${what})`);
      this.#pending -= part.length;
      yield part;
    }
    const pad = (BLOCK - size % BLOCK) % BLOCK;
    if (pad) await this.#exact(pad, `the padding of ${what}`);
  }

  /** The current member's data whole. */
  async bytes(what: string, size: number): Promise<Uint8Array> {
    const out = new Uint8Array(size);
    let o = 0;
    for await (const part of this.data(what)) {
      out.set(part, o);
      o += part.length;
    }
    return out;
  }
}
