/**
 * virtio-blk front-end (virtio 1.2, section 5.2): parses requests from the guest's queue
 * and hands them to an asynchronous block backend. The CPU loop never waits: a request
 * completes later, then data and status reach guest memory, the used ring is updated and
 * the interrupt raised. Bad requests get VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP.
 */

import { type VirtioDevice, VirtioDeviceId, type VirtioHost } from "./device.ts";
import { readConfigBytes } from "./device.ts";
import { DescriptorChain } from "./virtqueue.ts";

/** What the block backend reports about itself. */
export interface BlockInfo {
  /** Size of the disk in bytes (the guest sees whole 512-byte sectors). */
  sizeBytes: number;
  /** Writes are refused. */
  readOnly: boolean;
  /** The backend implements `discard`. */
  discard: boolean;
}

/**
 * The asynchronous seam to a block backend (the disk service's Block API over NATS in
 * production). Rejections become VIRTIO_BLK_S_IOERR for the guest. `ctx`, when given, is
 * the trace context (an OTel `Context`) of the virtio request the call serves.
 */
export interface BlockBackendClient {
  /** Geometry and features. */
  info(): Promise<BlockInfo>;
  /** Reads exactly `length` bytes at byte `offset`. */
  read(offset: number, length: number, ctx?: unknown): Promise<Uint8Array>;
  /** Writes `data` at byte `offset`. */
  write(offset: number, data: Uint8Array, ctx?: unknown): Promise<void>;
  /** Makes every completed write durable. */
  flush(ctx?: unknown): Promise<void>;
  /** The range may read back as zeros afterwards. */
  discard(offset: number, length: number, ctx?: unknown): Promise<void>;
  /**
   * The guest's notify has been served: every request it made available was started (called
   * when nothing else was in flight, i.e. the guest waits for these). A client
   * that queues its sends (the bus client: nats.js writes at the end of the current task, which
   * in the CPU loop is the end of the instruction batch) sends them now. Optional.
   */
  kick?(): void;
}

/** The span of one traced virtio-blk request. */
export interface BlkRequestSpan {
  /** Trace context the backend calls of the request run in. */
  readonly context: unknown;
  /** Ends the span with the status byte written (negative: dropped by a reset). */
  end(status: number): void;
}

/** Makes request spans (see `../tracing.ts`); absent means no tracing work at all. */
export interface BlkTracer {
  /** Starts the span of a request, or returns undefined when it is not recorded. */
  begin(op: string, sector: number, bytes: number): BlkRequestSpan | undefined;
}

/** `vmesh.op` names of request types. */
const OP_NAMES: Record<number, string> = {
  0: "read",
  1: "write",
  4: "flush",
  8: "get_id",
  11: "discard",
  13: "write_zeroes",
};

/** Request types (virtio_blk_outhdr.type). */
export const VirtioBlkType = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  DISCARD: 11,
  WRITE_ZEROES: 13,
} as const;

/** Status byte values. */
export const VirtioBlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/** Feature bits of the block device. */
export const VirtioBlkFeature = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;

/** Bytes per virtio-blk sector (fixed by the spec, whatever blk_size says). */
export const SECTOR = 512;
/**
 * Largest data transfer of one request; larger ones get IOERR. The advertised size_max x
 * seg_max stays below it, so a Linux guest never sends a larger one.
 */
export const MAX_REQUEST_BYTES = 32 << 20;
/** Data bytes in flight beyond which the device stops taking requests until some complete. */
export const MAX_INFLIGHT_BYTES = 64 << 20;
/** Sectors of one discard / write-zeroes segment we accept (advertised in config). */
const MAX_RANGE_SECTORS = 8192;
/** Segments per discard / write-zeroes request. */
const MAX_RANGE_SEGS = 16;
/** Length of the GET_ID answer. */
const ID_BYTES = 20;
/** Size of virtio_blk_outhdr. */
const HDR = 16;

/** Options of a virtio-blk device. */
export interface VirtioBlkOptions {
  /** Queue size until the driver picks one, 256 by default (as QEMU). */
  queueSize?: number;
  /** Serial number returned by GET_ID (up to 20 bytes). */
  serial?: string;
  /** Traces each request (one span from pickup to the used ring); default none. */
  tracer?: BlkTracer;
}

/** Device state for snapshots: the heads of requests still in flight. */
export interface VirtioBlkState {
  inflight: number[];
}

/** The virtio block device with one request queue. */
export class VirtioBlk implements VirtioDevice {
  readonly deviceId = VirtioDeviceId.BLOCK;
  readonly features: readonly [number, number];
  readonly numQueues = 1;
  readonly queueSize: number;
  /** As QEMU's virtio-blk: requests kicked before DRIVER_OK are served. */
  readonly servesBeforeDriverOk = true;
  /** Disk capacity in 512-byte sectors. */
  readonly capacity: number;
  /** Requests completed, by status. */
  readonly completed = { ok: 0, ioerr: 0, unsupp: 0 };

  private host!: VirtioHost;
  private readonly config = new Uint8Array(60);
  private readonly chain = new DescriptorChain();
  private readonly hdr = new Uint8Array(HDR);
  private readonly hdrView = new DataView(this.hdr.buffer);
  private readonly statusByte = new Uint8Array(1);
  private readonly serial: Uint8Array;
  // Heads of requests in flight; a reset or load bumps `epoch` so late completions are dropped.
  private readonly inflight = new Map<number, number>();
  private inflightBytes = 0;
  private epoch = 0;
  private readonly tracer?: BlkTracer;
  // Spans of traced requests by head; the context of the request being started.
  private readonly spans = new Map<number, BlkRequestSpan>();
  private ctx: unknown = undefined;

  /** Use `VirtioBlk.open` to ask the backend for its info first. */
  constructor(
    private readonly backend: BlockBackendClient,
    readonly info: BlockInfo,
    options: VirtioBlkOptions = {},
  ) {
    this.queueSize = options.queueSize ?? 256;
    this.tracer = options.tracer;
    this.serial = new TextEncoder().encode(options.serial ?? "vmesh").subarray(0, ID_BYTES);
    this.capacity = Math.floor(info.sizeBytes / SECTOR);
    let lo = (1 << VirtioBlkFeature.SIZE_MAX) | (1 << VirtioBlkFeature.SEG_MAX) |
      (1 << VirtioBlkFeature.BLK_SIZE) |
      (1 << VirtioBlkFeature.FLUSH);
    if (info.readOnly) lo |= 1 << VirtioBlkFeature.RO;
    else lo |= 1 << VirtioBlkFeature.WRITE_ZEROES;
    if (info.discard && !info.readOnly) lo |= 1 << VirtioBlkFeature.DISCARD;
    this.features = [lo >>> 0, 0];
    const c = new DataView(this.config.buffer);
    c.setUint32(0, this.capacity % 4294967296, true); // capacity (le64)
    c.setUint32(4, Math.floor(this.capacity / 4294967296), true);
    const segMax = Math.max(1, this.queueSize - 2);
    const sizeMax = Math.max(4096, Math.floor(MAX_REQUEST_BYTES / segMax / 4096) * 4096);
    c.setUint32(8, sizeMax, true); // size_max
    c.setUint32(12, segMax, true); // seg_max
    c.setUint32(20, SECTOR, true); // blk_size
    c.setUint32(36, MAX_RANGE_SECTORS, true); // max_discard_sectors
    c.setUint32(40, MAX_RANGE_SEGS, true); // max_discard_seg
    c.setUint32(44, 1, true); // discard_sector_alignment
    c.setUint32(48, MAX_RANGE_SECTORS, true); // max_write_zeroes_sectors
    c.setUint32(52, MAX_RANGE_SEGS, true); // max_write_zeroes_seg
  }

  /** Asks the backend for its geometry, then builds the device. */
  static async open(backend: BlockBackendClient, options?: VirtioBlkOptions): Promise<VirtioBlk> {
    return new VirtioBlk(backend, await backend.info(), options);
  }

  /** Requests submitted to the backend and not yet completed. */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /** Called by the transport. */
  attach(host: VirtioHost): void {
    this.host = host;
  }

  /** struct virtio_blk_config, little-endian. */
  readConfig(offset: number, size: 1 | 2 | 4): number {
    return readConfigBytes(this.config, offset, size);
  }

  /** Config space is read-only here (no CONFIG_WCE). */
  writeConfig(): void {}

  /** Starts every request the driver made available. */
  queueNotify(index: number): void {
    if (index !== 0) return;
    const q = this.host.queue(0);
    // Backpressure: what stays on the ring is picked up as requests complete.
    // Kicked only when nothing else was in flight: that is when the guest waits for these
    // (queue depth 1). With requests in flight the sends go out together when the CPU loop
    // yields: one socket write for many notifies, and the write costs the CPU loop's thread.
    const idle = this.inflight.size === 0;
    let started = 0;
    while (this.inflightBytes < MAX_INFLIGHT_BYTES && q.pop(this.chain)) {
      this.start(this.chain);
      started++;
    }
    if (started > 0 && idle) this.backend.kick?.();
  }

  /** Drops requests in flight: their completions will not touch guest memory. */
  reset(): void {
    this.epoch++;
    this.inflight.clear();
    this.inflightBytes = 0;
    if (this.spans.size > 0) {
      for (const span of this.spans.values()) span.end(-1);
      this.spans.clear();
    }
  }

  /** Heads of requests in flight; `load` re-submits them from the descriptor table. */
  save(): VirtioBlkState {
    return { inflight: [...this.inflight.keys()] };
  }

  /** Re-walks and re-submits the requests that were in flight when the state was saved. */
  load(state: unknown): void {
    this.reset();
    const s = state as VirtioBlkState | undefined;
    const heads = Array.isArray(s?.inflight) ? s.inflight : [];
    const q = this.host.queue(0);
    for (const head of heads) {
      if (typeof head !== "number" || !q.walk(head, this.chain)) return;
      this.start(this.chain);
    }
  }

  /** Parses one request; `chain` may be reused after this returns. */
  private start(chain: DescriptorChain): void {
    const mem = this.host.memory;
    if (chain.writableBytes < 1) {
      // No room even for a status byte: return the buffer untouched.
      this.host.queue(0).push(chain.head, 0);
      this.host.signalUsed(0);
      return;
    }
    if (chain.readableBytes < HDR) return this.finish(chain.clone(), VirtioBlkStatus.IOERR, 0);
    chain.read(mem, 0, this.hdr);
    const type = this.hdrView.getUint32(0, true);
    const sector = this.hdrView.getUint32(12, true) * 4294967296 +
      this.hdrView.getUint32(8, true);
    const dataIn = chain.writableBytes - 1;
    const dataOut = chain.readableBytes - HDR;
    if (this.tracer) {
      // Data bytes the guest receives (read, get_id) or sends (write; discard's range list).
      const toGuest = type === VirtioBlkType.IN || type === VirtioBlkType.GET_ID;
      this.trace(chain.head, type, sector, toGuest ? dataIn : dataOut);
    }
    try {
      this.dispatch(chain, type, sector, dataIn, dataOut);
    } finally {
      this.ctx = undefined;
    }
  }

  /** Starts the span of a request; its context goes to the backend calls made for it. */
  private trace(head: number, type: number, sector: number, bytes: number): void {
    const span = this.tracer!.begin(OP_NAMES[type] ?? `type_${type}`, sector, bytes);
    if (!span) return;
    this.spans.get(head)?.end(-1);
    this.spans.set(head, span);
    this.ctx = span.context;
  }

  private dispatch(
    chain: DescriptorChain,
    type: number,
    sector: number,
    dataIn: number,
    dataOut: number,
  ): void {
    const mem = this.host.memory;
    switch (type) {
      case VirtioBlkType.IN:
        return this.startRead(chain.clone(), sector, dataIn);
      case VirtioBlkType.OUT:
        return this.startWrite(chain.clone(), sector, dataOut);
      case VirtioBlkType.FLUSH:
        return this.track(chain.clone(), (ctx) => this.backend.flush(ctx), 0);
      case VirtioBlkType.GET_ID: {
        const n = Math.min(ID_BYTES, dataIn);
        const id = new Uint8Array(n);
        id.set(this.serial.subarray(0, n));
        chain.write(mem, 0, id);
        return this.finish(chain.clone(), VirtioBlkStatus.OK, n);
      }
      case VirtioBlkType.DISCARD:
      case VirtioBlkType.WRITE_ZEROES:
        return this.startRanges(chain.clone(), type, dataOut);
      default:
        return this.finish(chain.clone(), VirtioBlkStatus.UNSUPP, 0);
    }
  }

  /** True when [sector, sector + bytes/512) lies on the disk. */
  private inRange(sector: number, bytes: number): boolean {
    return sector <= this.capacity && bytes <= (this.capacity - sector) * SECTOR;
  }

  private startRead(chain: DescriptorChain, sector: number, len: number): void {
    if (len % SECTOR !== 0 || len > MAX_REQUEST_BYTES || !this.inRange(sector, len)) {
      return this.finish(chain, VirtioBlkStatus.IOERR, 0);
    }
    const epoch = this.epoch;
    const ctx = this.ctx;
    this.begin(chain.head, len);
    guarded(() => this.backend.read(sector * SECTOR, len, ctx)).then(
      (data) => {
        if (epoch !== this.epoch) return;
        if (!(data instanceof Uint8Array) || data.length !== len) {
          return this.finish(chain, VirtioBlkStatus.IOERR, 0);
        }
        chain.write(this.host.memory, 0, data);
        this.finish(chain, VirtioBlkStatus.OK, len);
      },
      () => {
        if (epoch === this.epoch) this.finish(chain, VirtioBlkStatus.IOERR, 0);
      },
    );
  }

  private startWrite(chain: DescriptorChain, sector: number, len: number): void {
    if (
      this.info.readOnly || len % SECTOR !== 0 || len > MAX_REQUEST_BYTES ||
      !this.inRange(sector, len)
    ) {
      return this.finish(chain, VirtioBlkStatus.IOERR, 0);
    }
    const data = new Uint8Array(len);
    chain.read(this.host.memory, HDR, data);
    this.track(chain, (ctx) => this.backend.write(sector * SECTOR, data, ctx), len);
  }

  /** DISCARD / WRITE_ZEROES: a list of {le64 sector, le32 num_sectors, le32 flags}. */
  private startRanges(chain: DescriptorChain, type: number, len: number): void {
    const discard = type === VirtioBlkType.DISCARD;
    if (discard ? !this.info.discard || this.info.readOnly : this.info.readOnly) {
      return this.finish(
        chain,
        this.info.readOnly ? VirtioBlkStatus.IOERR : VirtioBlkStatus.UNSUPP,
        0,
      );
    }
    const segs = len / 16;
    if (len === 0 || len % 16 !== 0 || segs > MAX_RANGE_SEGS) {
      return this.finish(chain, VirtioBlkStatus.UNSUPP, 0);
    }
    const raw = new Uint8Array(len);
    chain.read(this.host.memory, HDR, raw);
    const v = new DataView(raw.buffer);
    const ranges: [number, number][] = [];
    for (let i = 0; i < segs; i++) {
      const sector = v.getUint32(i * 16 + 4, true) * 4294967296 + v.getUint32(i * 16, true);
      const count = v.getUint32(i * 16 + 8, true);
      const flags = v.getUint32(i * 16 + 12, true);
      // Unknown flags, or UNMAP on a discard, are unsupported (section 5.2.6.2).
      if ((flags & ~1) !== 0 || (discard && flags !== 0) || count > MAX_RANGE_SECTORS) {
        return this.finish(chain, VirtioBlkStatus.UNSUPP, 0);
      }
      if (!this.inRange(sector, count * SECTOR)) {
        return this.finish(chain, VirtioBlkStatus.IOERR, 0);
      }
      ranges.push([sector * SECTOR, count * SECTOR]);
    }
    const backend = this.backend;
    this.track(chain, async (ctx) => {
      for (const [off, n] of ranges) {
        if (discard) await backend.discard(off, n, ctx);
        else if (n > 0) await backend.write(off, new Uint8Array(n), ctx);
      }
    }, 0);
  }

  /** Records a request in flight holding `bytes` of host memory. */
  private begin(head: number, bytes: number): void {
    this.inflight.set(head, bytes);
    this.inflightBytes += bytes;
  }

  /**
   * Runs an operation without data to return (`bytes` is what it holds in flight); OK when
   * it resolves, IOERR when it rejects.
   */
  private track(
    chain: DescriptorChain,
    op: (ctx: unknown) => Promise<void>,
    bytes: number,
  ): void {
    const epoch = this.epoch;
    const ctx = this.ctx;
    this.begin(chain.head, bytes);
    guarded(() => op(ctx)).then(
      () => {
        if (epoch === this.epoch) this.finish(chain, VirtioBlkStatus.OK, 0);
      },
      () => {
        if (epoch === this.epoch) this.finish(chain, VirtioBlkStatus.IOERR, 0);
      },
    );
  }

  /** Writes the status byte after `dataLen` bytes, returns the chain and interrupts. */
  private finish(chain: DescriptorChain, status: number, dataLen: number): void {
    const held = this.inflight.get(chain.head);
    const stalled = this.inflightBytes >= MAX_INFLIGHT_BYTES;
    if (held !== undefined) {
      this.inflight.delete(chain.head);
      this.inflightBytes -= held;
    }
    const mem = this.host.memory;
    const at = chain.writableBytes - 1;
    this.statusByte[0] = status;
    chain.write(mem, at, this.statusByte);
    if (status === VirtioBlkStatus.OK) this.completed.ok++;
    else if (status === VirtioBlkStatus.IOERR) this.completed.ioerr++;
    else this.completed.unsupp++;
    const q = this.host.queue(0);
    q.push(chain.head, dataLen + 1);
    this.host.signalUsed(0);
    if (this.spans.size > 0) {
      const span = this.spans.get(chain.head);
      if (span) {
        this.spans.delete(chain.head);
        span.end(status);
      }
    }
    if (stalled && this.host.serving) this.queueNotify(0);
  }
}

/** Calls `op`, turning a synchronous throw into a rejected promise. */
function guarded<T>(op: () => Promise<T>): Promise<T> {
  try {
    return Promise.resolve(op());
  } catch (e) {
    return Promise.reject(e);
  }
}
