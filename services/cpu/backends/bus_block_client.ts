/**
 * A `BlockBackendClient` over the bus: virtio-blk requests become Block API requests to the
 * disk service (`vmesh.<vm>.<disk>.<op>`). Every request has an overall deadline; attempts
 * that time out or find no service are retried with the same request id until then, so a
 * disk service that is restarted (or replaced) mid-request is survived and a retried write
 * is applied once by a service that already saw it.
 */

import type { Context } from "@opentelemetry/api";
import { block, type Bus, BusError, type DeviceClient, Status } from "@vmesh/bus";
import type { BlockBackendClient, BlockInfo } from "../virtio/blk.ts";
import { ReadAhead } from "./read_ahead.ts";

/** Options of a {@link BusBlockClient}. */
export interface BusBlockClientOptions {
  /** VM name (first subject token). */
  vm: string;
  /** Device name of the disk on the bus, e.g. "disk0". */
  device: string;
  /** Timeout of one attempt in ms (default 2000). */
  attemptTimeoutMs?: number;
  /** Overall budget of one request across its attempts in ms (default 60000). */
  deadlineMs?: number;
  /** Largest bytes per bus request; larger transfers are split (default 256 KiB). */
  maxTransfer?: number;
  /** Longest pause between attempts in ms (default 500). */
  maxRetryDelayMs?: number;
  /**
   * Bytes read ahead of a sequential reader, in maxTransfer pieces all in flight at once
   * (default 8 MiB; 0 turns read-ahead off). See `read_ahead.ts`.
   */
  readAheadBytes?: number;
}

/** Default read-ahead window. */
export const DEFAULT_READ_AHEAD = 8 << 20;

/** `$VMESH_READ_AHEAD_BYTES` (for benchmarks: 0 turns it off), else the default. */
function readAheadFromEnv(): number {
  const v = Deno.env.get("VMESH_READ_AHEAD_BYTES");
  const n = v === undefined || v === "" ? NaN : Number(v);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_READ_AHEAD;
}

/** Statuses worth another attempt: the service is away or slow. */
const RETRYABLE = new Set<number>([Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED]);

/** The disk service's Block API as the virtio-blk device's backend. */
export class BusBlockClient implements BlockBackendClient {
  readonly #client: DeviceClient<typeof block.ops>;
  readonly #attemptMs: number;
  readonly #deadlineMs: number;
  readonly #maxTransfer: number;
  readonly #maxDelay: number;
  readonly #ahead: ReadAhead;
  /** Attempts that were retried (for diagnostics and tests). */
  retries = 0;
  /** True after the last request reached the service; false after one gave up. */
  connected = false;

  constructor(readonly bus: Bus, readonly opts: BusBlockClientOptions) {
    this.#client = bus.client({ vm: opts.vm, device: opts.device }, block.ops);
    this.#attemptMs = opts.attemptTimeoutMs ?? 2000;
    this.#deadlineMs = opts.deadlineMs ?? 60_000;
    this.#maxTransfer = opts.maxTransfer ?? 256 * 1024;
    this.#maxDelay = opts.maxRetryDelayMs ?? 500;
    if (!(this.#maxTransfer >= 512 && this.#maxTransfer % 512 === 0)) {
      throw new RangeError(`maxTransfer must be a positive multiple of 512`);
    }
    // Nothing is read ahead until `info` gave the disk's size.
    this.#ahead = new ReadAhead((o, n, ctx) => this.#read(o, n, ctx), {
      windowBytes: opts.readAheadBytes ?? readAheadFromEnv(),
      chunkBytes: this.#maxTransfer,
      sizeBytes: 0,
    });
  }

  /** Read-ahead counters (hits, misses, chunks fetched and dropped). */
  get readAhead() {
    return this.#ahead.stats;
  }

  /** The subject prefix requests go to. */
  get prefix(): string {
    return this.#client.prefix;
  }

  /**
   * Sends one request, retrying with the same id until it succeeds or the deadline passes;
   * `ctx` is the parent trace context of its bus spans (the virtio request's).
   */
  async #call<K extends keyof typeof block.ops & string>(
    op: K,
    req: Parameters<DeviceClient<typeof block.ops>["call"]>[1] & object,
    ctx?: unknown,
  ) {
    const requestId = crypto.randomUUID();
    const giveUpAt = Date.now() + this.#deadlineMs;
    let delay = 20;
    for (;;) {
      const left = giveUpAt - Date.now();
      try {
        const reply = await this.#client.call(op, req as never, {
          requestId,
          timeoutMs: Math.max(1, Math.min(this.#attemptMs, left)),
          retries: 0,
          context: ctx as Context | undefined,
        });
        this.connected = true;
        return reply;
      } catch (e) {
        const retry = e instanceof BusError && RETRYABLE.has(e.code) &&
          Date.now() + delay < giveUpAt;
        if (!retry) {
          if (e instanceof BusError && RETRYABLE.has(e.code)) this.connected = false;
          throw e;
        }
        this.retries++;
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, this.#maxDelay);
      }
    }
  }

  /** Geometry and features of the disk. */
  async info(): Promise<BlockInfo> {
    const i = await this.#call("info", {}) as block.Info;
    this.#ahead.sizeBytes = i.sizeBytes;
    return { sizeBytes: i.sizeBytes, readOnly: i.readOnly, discard: i.discard };
  }

  /** Reads `length` bytes at `offset`, from read-ahead chunks when they hold it. */
  read(offset: number, length: number, ctx?: unknown): Promise<Uint8Array> {
    return this.#ahead.read(offset, length, ctx);
  }

  /** Reads `length` bytes at `offset` (split into requests of at most maxTransfer). */
  async #read(offset: number, length: number, ctx?: unknown): Promise<Uint8Array> {
    if (length <= this.#maxTransfer) {
      const r = await this.#call("read", { offset, length }, ctx) as block.ReadReply;
      return checkLength(r.data, length, offset);
    }
    const out = new Uint8Array(length);
    const parts: Promise<void>[] = [];
    for (let done = 0; done < length; done += this.#maxTransfer) {
      const n = Math.min(this.#maxTransfer, length - done);
      parts.push(
        (this.#call("read", { offset: offset + done, length: n }, ctx) as Promise<
          block.ReadReply
        >)
          .then((r) => out.set(checkLength(r.data, n, offset + done), done)),
      );
    }
    await Promise.all(parts);
    return out;
  }

  /** Writes `data` at `offset` (split into requests of at most maxTransfer). */
  write(offset: number, data: Uint8Array, ctx?: unknown): Promise<void> {
    return this.#ahead.mutate(offset, data.length, () => this.#write(offset, data, ctx));
  }

  async #write(offset: number, data: Uint8Array, ctx?: unknown): Promise<void> {
    const parts: Promise<unknown>[] = [];
    for (let done = 0; done < data.length || done === 0; done += this.#maxTransfer) {
      const chunk = data.subarray(done, Math.min(data.length, done + this.#maxTransfer));
      parts.push(this.#call("write", { offset: offset + done, data: chunk }, ctx));
      if (data.length === 0) break;
    }
    await Promise.all(parts);
  }

  /** Sends the requests started so far now, not when the CPU loop next yields. */
  kick(): void {
    this.bus.sendNow();
  }

  /** Makes completed writes durable. */
  async flush(ctx?: unknown): Promise<void> {
    await this.#call("flush", {}, ctx);
  }

  /** Discards a range. */
  async discard(offset: number, length: number, ctx?: unknown): Promise<void> {
    await this.#ahead.mutate(offset, length, () => this.#call("discard", { offset, length }, ctx));
  }
}

function checkLength(data: Uint8Array, want: number, offset: number): Uint8Array {
  if (data.length !== want) {
    throw new BusError(
      Status.INTERNAL,
      `short read at ${offset}: ${data.length} of ${want} bytes`,
    );
  }
  return data;
}
