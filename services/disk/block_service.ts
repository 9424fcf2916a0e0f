/**
 * The Block API (proto/block.proto) served over the bus for one backend: each op checks
 * its request against the backend's geometry and the transfer limits, then calls the
 * backend. Refusals are typed error replies; the bus replays write/flush/discard replies
 * to retried request ids, so a retried write is applied once.
 * @module
 */

import {
  block,
  type Bus,
  BusError,
  type DeviceService,
  Encoded,
  type Handlers,
  type RequestContext,
  Status,
} from "@vmesh/bus";
import { type BlockBackend, BlockError, checkRange, type RequestLimits } from "./block_backend.ts";

/** Service name for discovery. */
export const SERVICE_NAME = "vmesh-disk";

/** Default largest read/write payload: half of NATS' default 1 MiB max_payload. */
export const DEFAULT_MAX_TRANSFER = 512 * 1024;

/** Room in a request for the fields around the data (ids, offset, protobuf tags). */
const ENVELOPE_BYTES = 4096;

/** Turns a backend refusal into the bus error the caller sees. */
function toBusError(err: unknown): unknown {
  return err instanceof BlockError ? new BusError(Status[err.code], err.message) : err;
}

/** Adds the device attributes of a block request to the server span. */
function annotate(ctx: RequestContext, offset: number, bytes: number): void {
  if (!ctx.span.isRecording()) return;
  ctx.span.setAttribute("vmesh.offset", offset);
  ctx.span.setAttribute("vmesh.bytes", bytes);
}

/** The handlers of the block ops for `backend`. */
export function blockHandlers(
  backend: BlockBackend,
  limits: RequestLimits,
): Handlers<typeof block.ops> {
  const guarded = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw toBusError(err);
    }
  };
  const writable = () => {
    if (backend.info().readOnly) throw new BusError(Status.READ_ONLY, "the disk is read-only");
  };
  return {
    info: () => backend.info(),
    read: (req, ctx) => {
      // No async wrapper: a read served from the page cache is answered in the same turn.
      try {
        annotate(ctx, req.offset, req.length);
        checkRange(backend.info(), req.offset, req.length, limits);
        if (backend.readInto) {
          // The data is read into the reply message itself (no codec copy).
          const reply = block.readReplyBuffer(req.length);
          return backend.readInto(req.offset, reply.data).then(
            () => new Encoded<block.ReadReply>(reply.bytes),
            (e) => Promise.reject(toBusError(e)),
          );
        }
        return backend.read(req.offset, req.length).then(
          (data): block.ReadReply => ({ status: Status.OK, data }),
          (e) => Promise.reject(toBusError(e)),
        );
      } catch (e) {
        return Promise.reject(toBusError(e));
      }
    },
    write: (req, ctx) =>
      guarded(async () => {
        annotate(ctx, req.offset, req.data.length);
        writable();
        checkRange(backend.info(), req.offset, req.data.length, limits);
        await backend.write(req.offset, req.data, req.fua ?? false);
        return { status: Status.OK, written: req.data.length };
      }),
    flush: () =>
      guarded(async () => {
        await backend.flush();
        return { status: Status.OK };
      }),
    discard: (req, ctx) =>
      guarded(async () => {
        annotate(ctx, req.offset, req.length);
        writable();
        checkRange(backend.info(), req.offset, req.length, limits, false);
        await backend.discard(req.offset, req.length);
        return { status: Status.OK };
      }),
  };
}

/** Where and how a disk is served. */
export interface BlockServiceOptions {
  /** VM name: the `<vm>` subject token. */
  vm: string;
  /** Device name: the `<device>` subject token, e.g. `disk0`. */
  device: string;
  /** Service version for discovery (semver). */
  version: string;
  /** Transfer limits requests are checked against. */
  limits: RequestLimits;
  /** Extra discovery metadata (backend kind, image path). */
  metadata?: Record<string, string>;
  /** Serves `checkpoint` (`block.pointOps`, disk points for snapshots) with this handler. */
  checkpoint?: (req: block.Checkpoint) => Promise<block.CheckpointReply>;
}

/**
 * Serves `backend` as `vmesh.<vm>.<device>.{info,read,write,flush,discard}`, and
 * `checkpoint` when `opts.checkpoint` is given.
 */
export function serveBlock(
  bus: Bus,
  backend: BlockBackend,
  opts: BlockServiceOptions,
): Promise<DeviceService> {
  const common = {
    vm: opts.vm,
    device: opts.device,
    name: SERVICE_NAME,
    version: opts.version,
    description: "vmesh block device backend",
    maxPayloadBytes: opts.limits.maxTransfer + ENVELOPE_BYTES,
    metadata: opts.metadata,
  };
  const handlers = blockHandlers(backend, opts.limits);
  if (!opts.checkpoint) return bus.serve({ ...common, ops: block.ops, handlers });
  return bus.serve({
    ...common,
    ops: { ...block.ops, ...block.pointOps },
    handlers: { ...handlers, checkpoint: opts.checkpoint },
  });
}
