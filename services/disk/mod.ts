/**
 * @vmesh/disk — block backends and the disk service that serves them on the bus.
 *
 * - {@link BlockBackend}: the interface (info, read, write, flush, discard).
 * - {@link RawFile}: a raw image file. {@link CowOverlay}: copy-on-write over a base.
 * - {@link serveBlock}: serves a backend as `vmesh.<vm>.<device>.<op>` (proto/block.proto).
 * @module
 */

export {
  type BlockBackend,
  BlockError,
  type BlockErrorCode,
  type BlockInfo,
  checkRange,
  type RequestLimits,
} from "./block_backend.ts";
export { RawFile, type RawFileOptions } from "./raw_file.ts";
export {
  type CowCreateOptions,
  type CowHeader,
  type CowOpenOptions,
  CowOverlay,
  decodeHeader,
  DEFAULT_CLUSTER_SIZE,
  encodeHeader,
} from "./cow_overlay.ts";
export {
  blockHandlers,
  type BlockServiceOptions,
  DEFAULT_MAX_TRANSFER,
  serveBlock,
  SERVICE_NAME,
} from "./block_service.ts";
