/**
 * The one interface every block backend (raw file, copy-on-write overlay, later qcow2)
 * implements, plus the typed error the service turns into a `vmesh.common.Error` reply.
 * @module
 */

/** Geometry and features of a block backend (mirrors `vmesh.block.Info`). */
export interface BlockInfo {
  /** Device size in bytes. */
  sizeBytes: number;
  /** Logical sector size; requests must be aligned to it. */
  sectorSize: number;
  /** Writes and discards are refused. */
  readOnly: boolean;
  /** The backend implements `discard`. */
  discard: boolean;
}

/** A block device backend. Offsets and lengths are in bytes. */
export interface BlockBackend {
  /** Geometry and features. */
  info(): BlockInfo;
  /**
   * Runs `fn` once every earlier request is done and written back (as `flush`), with no other
   * I/O until it settles: a still point of the files, e.g. to copy them for a snapshot.
   * Absent: the backend cannot be held still.
   */
  quiesced?<T>(fn: () => Promise<T>): Promise<T>;
  /** Reads `length` bytes at `offset`; bytes never written read as zero. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * As `read`, into `dst` (`dst.length` bytes at `offset`): lets the service read straight
   * into the reply message. Absent: the service calls `read` and the reply codec copies.
   */
  readInto?(offset: number, dst: Uint8Array): Promise<void>;
  /** Writes `data` at `offset`; durable after the next `flush` (or at once when `fua`). */
  write(offset: number, data: Uint8Array, fua?: boolean): Promise<void>;
  /** Makes every completed write durable (fsync) before it resolves. */
  flush(): Promise<void>;
  /** Releases a range; it reads back as zeros afterwards. */
  discard(offset: number, length: number): Promise<void>;
  /** Closes the backing files. */
  close(): void;
}

/** The `vmesh.common.Status` names a block backend can fail with. */
export type BlockErrorCode =
  | "INVALID_ARGUMENT"
  | "OUT_OF_RANGE"
  | "READ_ONLY"
  | "TOO_LARGE"
  | "IO_ERROR";

/** A refused or failed block request, carrying its `vmesh.common.Status` name. */
export class BlockError extends Error {
  /** Makes an error with its status name and a human-readable reason. */
  constructor(readonly code: BlockErrorCode, message: string) {
    super(message);
    this.name = "BlockError";
  }
}

/** Limits a request is checked against before it reaches a backend. */
export interface RequestLimits {
  /** Largest read/write payload in bytes (bounded by the NATS max_payload). */
  maxTransfer: number;
  /** Require offset and length to be multiples of the sector size. */
  requireAlignment: boolean;
}

/**
 * Checks a request range against a backend's geometry; throws a BlockError saying why
 * it is refused. `transfer` is false for discard, which carries no payload.
 */
export function checkRange(
  info: BlockInfo,
  offset: number,
  length: number,
  limits: RequestLimits,
  transfer = true,
): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new BlockError("INVALID_ARGUMENT", `bad range offset=${offset} length=${length}`);
  }
  if (transfer && length > limits.maxTransfer) {
    throw new BlockError(
      "TOO_LARGE",
      `length ${length} exceeds max transfer ${limits.maxTransfer}`,
    );
  }
  if (
    limits.requireAlignment && (offset % info.sectorSize !== 0 || length % info.sectorSize !== 0)
  ) {
    throw new BlockError(
      "INVALID_ARGUMENT",
      `offset ${offset} / length ${length} not aligned to ${info.sectorSize}-byte sectors`,
    );
  }
  if (offset + length > info.sizeBytes) {
    throw new BlockError(
      "OUT_OF_RANGE",
      `range ${offset}+${length} beyond device size ${info.sizeBytes}`,
    );
  }
}

/** A host failure as an IO_ERROR BlockError (a BlockError stays as it is). */
export function ioError(what: string, err: unknown): BlockError {
  if (err instanceof BlockError) return err;
  return new BlockError("IO_ERROR", `${what}: ${err instanceof Error ? err.message : err}`);
}

/** Runs a host I/O operation, reporting a host failure as an IO_ERROR BlockError. */
export async function hostIo<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    throw ioError(what, err);
  }
}
