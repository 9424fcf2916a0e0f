/**
 * Protobuf codecs for the contracts in the repo's proto/ directory, loaded once at
 * startup with protobufjs. Field names are camelCase in TypeScript
 * (`request_id` -> `requestId`); 64-bit integers decode to `number` unless the codec
 * was made with `{ bigint: true }`.
 *
 * @module
 */
import protobuf from "protobufjs";
import { DecodeError, EncodeError } from "./status.ts";

// proto3 string fields must be valid UTF-8: protobufjs's own reader would turn bad bytes into
// lone surrogates (found by the fuzzer), so it reads strings strictly; a bad one is a DecodeError.
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
protobuf.util.utf8.read = (buffer: Uint8Array, start: number, end: number): string =>
  strictUtf8.decode(buffer.subarray(start, end));

/** Encodes and decodes one message type. Decode/encode failures are typed errors. */
export interface Codec<T> {
  /** Fully qualified protobuf name, e.g. `vmesh.block.Read`. */
  readonly typeName: string;
  /** Encodes a value; throws {@link EncodeError} if it does not fit the type. */
  encode(value: T): Uint8Array;
  /**
   * Decodes bytes into a plain object with every field present (defaults filled in);
   * throws {@link DecodeError} on malformed bytes. Bytes fields are views into
   * `bytes` (no copy).
   */
  decode(bytes: Uint8Array): T;
}

/** Options of {@link codecFor}. */
export interface CodecOptions {
  /** Decode 64-bit integer fields as `bigint` (and accept bigint when encoding). */
  bigint?: boolean;
}

/** The default proto directory: `<repo>/proto/`, next to this package. */
export const DEFAULT_PROTO_DIR: URL = new URL("../proto/", import.meta.url);

let defaultRoot: protobuf.Root | undefined;

/**
 * Parses every `*.proto` file of `dir` into one protobufjs root (all files, so
 * imports resolve by name). Synchronous: call at startup.
 */
export function loadContracts(dir: string | URL = DEFAULT_PROTO_DIR): protobuf.Root {
  const root = new protobuf.Root();
  const base = typeof dir === "string"
    ? new URL(`file://${dir.endsWith("/") ? dir : dir + "/"}`)
    : dir;
  const files = [...Deno.readDirSync(base)]
    .filter((e) => e.isFile && e.name.endsWith(".proto"))
    .map((e) => e.name)
    .sort();
  for (const name of files) {
    const text = Deno.readTextFileSync(new URL(name, base));
    protobuf.parse(text, root, { keepCase: false });
  }
  root.resolveAll();
  return root;
}

/** The root loaded from {@link DEFAULT_PROTO_DIR} (loaded on first use). */
export function contracts(): protobuf.Root {
  defaultRoot ??= loadContracts();
  return defaultRoot;
}

const cache = new Map<string, Codec<unknown>>();

/**
 * The codec for a message type of the default contracts, e.g.
 * `codecFor<block.Read>("vmesh.block.Read")`. Codecs are cached.
 */
export function codecFor<T>(typeName: string, options: CodecOptions = {}): Codec<T> {
  const key = `${typeName}${options.bigint ? "#bigint" : ""}`;
  let c = cache.get(key);
  if (!c) {
    c = makeCodec<unknown>(contracts(), typeName, options);
    cache.set(key, c);
  }
  return c as Codec<T>;
}

/** Makes a codec for `typeName` of a given root (for tests or other proto dirs). */
export function makeCodec<T>(
  root: protobuf.Root,
  typeName: string,
  options: CodecOptions = {},
): Codec<T> {
  const type = root.lookupType(typeName);
  const conv: protobuf.IConversionOptions = {
    longs: options.bigint ? BigInt : Number,
    enums: Number,
    defaults: true,
    arrays: true,
  };
  return {
    typeName,
    encode(value: T): Uint8Array {
      const plain = options.bigint ? bigintsToLongBits(value) : value;
      const problem = type.verify(plain as Record<string, unknown>);
      if (problem) throw new EncodeError(typeName, problem);
      try {
        return type.encode(type.fromObject(plain as Record<string, unknown>)).finish();
      } catch (e) {
        throw new EncodeError(typeName, (e as Error).message, { cause: e });
      }
    },
    decode(bytes: Uint8Array): T {
      let msg: protobuf.Message;
      try {
        // A plain Uint8Array view, so bytes fields decode to Uint8Array, not Node Buffer
        // (whose slice() aliases where Uint8Array's copies).
        msg = type.decode(
          bytes.constructor === Uint8Array
            ? bytes
            : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength),
        );
      } catch (e) {
        throw new DecodeError(typeName, (e as Error).message, { cause: e });
      }
      return type.toObject(msg, conv) as T;
    },
  };
}

// protobufjs neither verifies nor converts bigint; {low, high} is its portable long form.
function bigintsToLongBits(v: unknown): unknown {
  if (typeof v === "bigint") {
    const u = BigInt.asUintN(64, v);
    return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: true };
  }
  if (Array.isArray(v)) return v.map(bigintsToLongBits);
  if (v !== null && typeof v === "object" && !ArrayBuffer.isView(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = bigintsToLongBits(x);
    return out;
  }
  return v;
}
