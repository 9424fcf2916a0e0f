/**
 * Sequential read-ahead for a block client whose reads cross the bus. A bus round trip is
 * answered only when the CPU's event loop gets a turn (between batches of guest
 * instructions), so a guest that reads a disk in order would wait that long for every
 * request. Once two reads in a row are sequential, the next `windowBytes` are fetched in
 * `chunkBytes` pieces, all in flight at once, and later reads are assembled from them (as
 * Ceph's RBD client does with `rbd_readahead_max_bytes`).
 *
 * The cache holds only what the disk holds: a write or discard drops every chunk it overlaps
 * (also chunks still in flight: their data is never used), and no chunk is fetched while a
 * write or discard is in flight, so a fetch never races one.
 * @module
 */

/** Fetches `length` bytes at `offset` from the disk (one bus request or several). */
export type FetchRange = (offset: number, length: number, ctx?: unknown) => Promise<Uint8Array>;

/** Options of a {@link ReadAhead}. */
export interface ReadAheadOptions {
  /** Bytes fetched ahead of a sequential reader (0 disables read-ahead). */
  windowBytes: number;
  /** Bytes per fetch; a multiple of 512. */
  chunkBytes: number;
  /** Size of the disk: nothing is fetched past it. */
  sizeBytes: number;
}

interface Chunk {
  /** Resolves with the chunk's bytes (shorter at the end of the disk). */
  data: Promise<Uint8Array>;
}

/** Counters for tests and diagnostics. */
export interface ReadAheadStats {
  /** Reads answered from fetched chunks. */
  hits: number;
  /** Reads sent to the disk as they came. */
  misses: number;
  /** Chunks fetched ahead. */
  fetched: number;
  /** Chunks dropped by a write or discard before use. */
  dropped: number;
}

/** Read-ahead cache in front of `fetch`. */
export class ReadAhead {
  readonly #fetch: FetchRange;
  readonly #window: number;
  readonly #chunk: number;
  #size: number;
  /** Chunks by start offset (a multiple of the chunk size). */
  readonly #chunks = new Map<number, Chunk>();
  /** End of the last read: the next one starting here continues a sequential stream. */
  #lastEnd = -1;
  /** Writes and discards in flight; no chunk is fetched while any is. */
  #writing = 0;
  readonly stats: ReadAheadStats = { hits: 0, misses: 0, fetched: 0, dropped: 0 };

  constructor(fetch: FetchRange, opts: ReadAheadOptions) {
    if (!(opts.chunkBytes >= 512 && opts.chunkBytes % 512 === 0)) {
      throw new RangeError("read-ahead chunkBytes must be a positive multiple of 512");
    }
    this.#fetch = fetch;
    this.#window = Math.max(0, opts.windowBytes);
    this.#chunk = opts.chunkBytes;
    this.#size = opts.sizeBytes;
  }

  /** The disk's size changed (e.g. a new `info`): chunks past it are never fetched. */
  set sizeBytes(n: number) {
    this.#size = n;
  }

  /** Chunks held or in flight (bounded by about twice the window). */
  get cachedChunks(): number {
    return this.#chunks.size;
  }

  /** Reads `length` bytes at `offset`, from fetched chunks when they cover the range. */
  async read(offset: number, length: number, ctx?: unknown): Promise<Uint8Array> {
    const sequential = offset === this.#lastEnd;
    this.#lastEnd = offset + length;
    const c = this.#chunk;
    const first = Math.floor(offset / c) * c;
    let covered = this.#window > 0 && length > 0;
    for (let at = first; covered && at < offset + length; at += c) {
      if (!this.#chunks.has(at)) covered = false;
    }
    if (covered) {
      this.stats.hits++;
      const parts: Promise<Uint8Array>[] = [];
      for (let at = first; at < offset + length; at += c) parts.push(this.#chunks.get(at)!.data);
      this.#ahead(offset + length);
      this.#evictBefore(first);
      let got: Uint8Array[];
      try {
        got = await Promise.all(parts);
      } catch {
        // A chunk that failed (e.g. past its deadline) is fetched again as the guest asked it.
        this.#drop(offset, length);
        return await this.#fetch(offset, length, ctx);
      }
      const out = new Uint8Array(length);
      for (let i = 0, at = first; i < got.length; i++, at += c) {
        const from = Math.max(offset, at), to = Math.min(offset + length, at + got[i].length);
        if (to > from) out.set(got[i].subarray(from - at, to - at), from - offset);
      }
      return out;
    }
    this.stats.misses++;
    if (sequential) {
      this.#evictBefore(Number.POSITIVE_INFINITY);
      this.#ahead(offset + length);
    }
    return await this.#fetch(offset, length, ctx);
  }

  /** Runs a write or discard of [offset, offset+length): overlapping chunks are dropped. */
  async mutate<T>(offset: number, length: number, op: () => Promise<T>): Promise<T> {
    this.#writing++;
    this.#drop(offset, length);
    try {
      return await op();
    } finally {
      this.#writing--;
      // A chunk fetched in the meantime (none should be) would not see this write either.
      this.#drop(offset, length);
    }
  }

  /** Drops every chunk (e.g. the disk was replaced under the client). */
  clear(): void {
    this.stats.dropped += this.#chunks.size;
    this.#chunks.clear();
    this.#lastEnd = -1;
  }

  /** Fetches the chunks of [from, from + window) that are not held yet. */
  #ahead(from: number): void {
    if (this.#window === 0 || this.#writing > 0) return;
    const c = this.#chunk;
    const end = Math.min(this.#size, from + this.#window);
    for (let at = Math.floor(from / c) * c; at < end; at += c) {
      if (this.#chunks.has(at)) continue;
      const n = Math.min(c, this.#size - at);
      const data = this.#fetch(at, n);
      // An unused chunk's failure is no one's error; a reader that awaits it sees it.
      data.catch(() => {});
      this.#chunks.set(at, { data });
      this.stats.fetched++;
    }
  }

  /** Forgets chunks that start before `offset` (already read past by the stream). */
  #evictBefore(offset: number): void {
    for (const at of this.#chunks.keys()) {
      if (at + this.#chunk <= offset || offset === Number.POSITIVE_INFINITY) {
        this.#chunks.delete(at);
      }
    }
  }

  #drop(offset: number, length: number): void {
    if (this.#chunks.size === 0) return;
    const c = this.#chunk;
    for (const at of [...this.#chunks.keys()]) {
      if (at < offset + Math.max(length, 1) && offset < at + c) {
        this.#chunks.delete(at);
        this.stats.dropped++;
      }
    }
  }
}
