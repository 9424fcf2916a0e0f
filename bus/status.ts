/**
 * Status codes of proto/common.proto (`vmesh.common.Status`) and the typed error
 * every failed bus call ends in.
 *
 * @module
 */

/** Mirrors `vmesh.common.Status`; the numbers are the wire values. */
export const Status = {
  OK: 0,
  INVALID_ARGUMENT: 1,
  MALFORMED: 2,
  UNKNOWN_OP: 3,
  TOO_LARGE: 4,
  NOT_FOUND: 5,
  OUT_OF_RANGE: 6,
  READ_ONLY: 7,
  IO_ERROR: 8,
  UNAVAILABLE: 9,
  DEADLINE_EXCEEDED: 10,
  FAILED_PRECONDITION: 11,
  INTERNAL: 12,
} as const;

/** A status code name, e.g. `"UNKNOWN_OP"`. */
export type StatusName = keyof typeof Status;
/** A status code number as it travels on the wire. */
export type StatusCode = typeof Status[StatusName];

const names = new Map<number, StatusName>(
  Object.entries(Status).map(([k, v]) => [v, k as StatusName]),
);

/** The name of a status code (`"UNKNOWN"` for a number outside the enum). */
export function statusName(code: number): StatusName | "UNKNOWN" {
  return names.get(code) ?? "UNKNOWN";
}

/**
 * The error a bus call rejects with and a handler throws to fail a request.
 * On the wire it is a `vmesh.common.Error` reply with the `vmesh-error` header.
 *
 * ```ts
 * throw new BusError(Status.OUT_OF_RANGE, "read past end of disk");
 * ```
 */
export class BusError extends Error {
  /** The status code (never OK). */
  readonly code: StatusCode;
  /** The request id of the failed request, when known. */
  readonly requestId: string;

  constructor(code: StatusCode, message: string, requestId = "", options?: ErrorOptions) {
    super(message, options);
    this.name = "BusError";
    this.code = code;
    this.requestId = requestId;
  }

  /** The status code's name, e.g. `"MALFORMED"`. */
  get status(): StatusName | "UNKNOWN" {
    return statusName(this.code);
  }

  override toString(): string {
    return `BusError ${this.status}: ${this.message}`;
  }
}

/** Raised by a codec when bytes are not a valid encoding of the message type. */
export class DecodeError extends BusError {
  /** Fully qualified protobuf type name, e.g. `vmesh.block.Read`. */
  readonly typeName: string;
  constructor(typeName: string, message: string, options?: ErrorOptions) {
    super(Status.MALFORMED, `cannot decode ${typeName}: ${message}`, "", options);
    this.name = "DecodeError";
    this.typeName = typeName;
  }
}

/** Raised by a codec when a value does not fit the message type. */
export class EncodeError extends BusError {
  /** Fully qualified protobuf type name. */
  readonly typeName: string;
  constructor(typeName: string, message: string, options?: ErrorOptions) {
    super(Status.INVALID_ARGUMENT, `cannot encode ${typeName}: ${message}`, "", options);
    this.name = "EncodeError";
    this.typeName = typeName;
  }
}
