/**
 * The disk service's snapshot op, `vmesh.<vm>.<device>.checkpoint` (`block.pointOps`, served
 * with the block ops by `serveBlock`): with
 * the backend held still (every earlier request done and written back, no I/O meanwhile), the
 * overlay file is copied to a read-only point file; the live overlay then takes writes again,
 * the point never does. A read-only image without an overlay is its own point.
 * @module
 */
import { dirname } from "node:path";
import { type block, BusError, Status } from "@vmesh/bus";
import type { BlockBackend } from "./block_backend.ts";

const NAME = /^[A-Za-z0-9_.-]{1,200}$/;

/** What the disk service serves, for its points. */
export interface DiskPointOptions {
  vm: string;
  device: string;
  backend: BlockBackend;
  /** "raw", "cow" or "qcow2". */
  kind: string;
  image: string;
  overlay?: string;
}

/** The handler of `checkpoint` for the disk of `o`. */
export function checkpointHandler(
  o: DiskPointOptions,
): (req: block.Checkpoint) => Promise<block.CheckpointReply> {
  return async (req) => {
    if (!NAME.test(req.name) || req.name === "." || req.name === "..") {
      throw new BusError(Status.INVALID_ARGUMENT, `bad snapshot name ${JSON.stringify(req.name)}`);
    }
    if (!o.overlay) {
      if (o.backend.info().readOnly) {
        const { size } = await Deno.stat(o.image);
        return { status: Status.OK, backend: o.kind, image: o.image, point: o.image, bytes: size };
      }
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `disk ${o.device} writes to ${o.image} itself: no point can be kept apart from it ` +
          `(serve it with --overlay, or --read-only)`,
      );
    }
    if (!o.backend.quiesced) {
      throw new BusError(Status.FAILED_PRECONDITION, `the ${o.kind} backend cannot be held still`);
    }
    const overlay = o.overlay;
    const dir = req.dir || dirname(overlay);
    const point = `${dir}/${o.vm}.${o.device}.${req.name}.${o.kind}`;
    try {
      await Deno.mkdir(dir, { recursive: true });
      await Deno.lstat(point);
      throw new BusError(Status.FAILED_PRECONDITION, `${point} exists already`);
    } catch (e) {
      if (e instanceof BusError) throw e;
      if (!(e instanceof Deno.errors.NotFound)) {
        throw new BusError(
          Status.IO_ERROR,
          `cannot write a point in ${dir}: ${(e as Error).message}`,
        );
      }
    }
    const tmp = `${point}.${crypto.randomUUID()}.tmp`;
    try {
      await o.backend.quiesced(() => Deno.copyFile(overlay, tmp));
      await Deno.chmod(tmp, 0o444);
      await Deno.rename(tmp, point);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw new BusError(
        Status.IO_ERROR,
        `copying ${overlay} to ${point}: ${(e as Error).message}`,
      );
    }
    const { size } = await Deno.stat(point);
    return { status: Status.OK, backend: o.kind, image: o.image, point, bytes: size };
  };
}
