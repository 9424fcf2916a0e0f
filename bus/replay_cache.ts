/**
 * A short-lived cache of replies keyed by request id, so a retried request (same
 * id) gets the first reply again instead of being applied twice.
 *
 * @module
 */
import type { MsgHdrs } from "@nats-io/transport-node";

/** An encoded reply as it was sent. */
export interface CachedReply {
  data: Uint8Array;
  headers?: MsgHdrs;
}

/** Bounds of a {@link ReplayCache}. */
export interface ReplayCacheOptions {
  /** Most entries kept (oldest evicted first). Default 4096. */
  maxEntries?: number;
  /** Most reply bytes kept. Default 32 MiB. */
  maxBytes?: number;
  /** How long an entry answers duplicates. Default 60 s. */
  ttlMs?: number;
}

interface Entry {
  reply: Promise<CachedReply | undefined>;
  bytes: number;
  expires: number;
}

/**
 * Maps request keys to replies. A duplicate that arrives while the first request is
 * still running waits for the same reply.
 */
export class ReplayCache {
  #entries = new Map<string, Entry>();
  #bytes = 0;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #ttlMs: number;

  constructor(opts: ReplayCacheOptions = {}) {
    this.#maxEntries = opts.maxEntries ?? 4096;
    this.#maxBytes = opts.maxBytes ?? 32 << 20;
    this.#ttlMs = opts.ttlMs ?? 60_000;
  }

  /** Number of entries held. */
  get size(): number {
    return this.#entries.size;
  }

  /** The reply (or pending reply) for `key`, if one is cached and fresh. */
  get(key: string): Promise<CachedReply | undefined> | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.expires < Date.now()) {
      this.#drop(key, e);
      return undefined;
    }
    return e.reply;
  }

  /**
   * Records the pending reply of `key`. If the promise resolves to undefined the
   * entry is dropped (the outcome was not one to replay, e.g. a transient error).
   */
  put(key: string, reply: Promise<CachedReply | undefined>): void {
    const e: Entry = { reply, bytes: 0, expires: Date.now() + this.#ttlMs };
    this.#entries.set(key, e);
    reply.then((r) => {
      if (this.#entries.get(key) !== e) return;
      if (!r) {
        this.#drop(key, e);
        return;
      }
      e.bytes = r.data.byteLength;
      this.#bytes += e.bytes;
      this.#evict();
    }, () => this.#entries.get(key) === e && this.#drop(key, e));
    this.#evict();
  }

  #drop(key: string, e: Entry) {
    this.#entries.delete(key);
    this.#bytes -= e.bytes;
  }

  #evict() {
    const now = Date.now();
    for (const [k, e] of this.#entries) {
      const over = this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes;
      if (!over && e.expires >= now) break;
      this.#drop(k, e);
    }
  }
}
