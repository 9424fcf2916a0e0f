/**
 * @vmesh/disk — block backends and the disk service that serves them on the bus.
 *
 * - {@link BlockBackend}: the interface (info, read, write, flush, discard).
 * - {@link RawFile}: a raw image file. {@link CowOverlay}: copy-on-write over a base.
 * - {@link Qcow2Image}: a qcow2 image (backing chains, discard); {@link createQcow2} makes one;
 *   {@link openImage} opens raw or qcow2, given or probed.
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
  type ImageFormat,
  openImage,
  type OpenImageOptions,
  parseImageFormat,
  probeFormat,
} from "./image_open.ts";
export { ProbedRawGuard } from "./probed_raw_guard.ts";
export { type BackingOpener, Qcow2Image, type Qcow2OpenOptions } from "./qcow2_image.ts";
export { createQcow2, type Qcow2CreateOptions } from "./qcow2_create.ts";
export { decodeQcow2Header, Qcow2FormatError, type Qcow2Header } from "./qcow2_header.ts";
export {
  blockHandlers,
  type BlockServiceOptions,
  DEFAULT_MAX_TRANSFER,
  serveBlock,
  SERVICE_NAME,
} from "./block_service.ts";
