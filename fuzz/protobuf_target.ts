/**
 * Protobuf decoding of every message type of every contract (proto/*.proto through
 * bus/codec.ts): random and near-valid bytes decode to a message or throw DecodeError, and a
 * decoded message encodes again (or is refused with EncodeError) and decodes to the same value.
 */
import { isDeepStrictEqual } from "node:util";
import type protobuf from "protobufjs";
import { contracts, makeCodec } from "../bus/codec.ts";
import { DecodeError, EncodeError } from "../bus/status.ts";
import { ByteReader, ByteWriter, mutate } from "./bytes.ts";
import type { Prng } from "./prng.ts";
import { type FuzzTarget, InvariantError, type Outcome } from "./target.ts";

/**
 * Every message type under `ns`, nested ones included, in a stable order.
 *
 * @example
 * ```ts
 * messageTypes().map((t) => t.fullName); // [".vmesh.block.Discard", ...]
 * ```
 */
export function messageTypes(ns: protobuf.NamespaceBase = contracts()): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  const walk = (n: protobuf.NamespaceBase) => {
    for (const child of n.nestedArray) {
      if ("fields" in child && "encode" in child) out.push(child as protobuf.Type);
      if ("nestedArray" in child) walk(child as protobuf.NamespaceBase);
    }
  };
  walk(ns);
  return out.sort((a, b) => a.fullName.localeCompare(b.fullName));
}

let types: protobuf.Type[] | undefined;
const codecs = new Map<string, ReturnType<typeof makeCodec<unknown>>[]>();

function typeList(): protobuf.Type[] {
  return types ??= messageTypes();
}

function codecsOf(t: protobuf.Type) {
  const name = t.fullName.replace(/^\./, "");
  let c = codecs.get(name);
  if (!c) {
    c = [
      makeCodec<unknown>(contracts(), name),
      makeCodec<unknown>(contracts(), name, {
        bigint: true,
      }),
    ];
    codecs.set(name, c);
  }
  return c;
}

const WIRE: Record<string, number> = {
  double: 1,
  fixed64: 1,
  sfixed64: 1,
  float: 5,
  fixed32: 5,
  sfixed32: 5,
  string: 2,
  bytes: 2,
};

function varint(w: ByteWriter, v: number, r: Prng): void {
  // Up to 10 bytes: some values need all of them, some inputs overlong or unterminated.
  const n = r.oneIn(8) ? 1 + r.below(11) : 0;
  if (n) {
    for (let i = 0; i < n; i++) w.u8(r.next() | (i < n - 1 ? 0x80 : 0));
    return;
  }
  v = v >>> 0;
  while (v >= 0x80) {
    w.u8((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  w.u8(v);
}

/** Wire-format fields of `t` with random values (wrong wire types and lengths now and then). */
function fields(t: protobuf.Type, r: Prng, depth: number): Uint8Array {
  const w = new ByteWriter();
  const list = t.fieldsArray;
  const n = r.below(8);
  for (let i = 0; i < n; i++) {
    const f = list.length && !r.oneIn(8) ? r.pick(list) : undefined;
    const id = f ? f.id : 1 + r.below(40);
    const resolved = f?.resolvedType;
    let wire = f
      ? (resolved && "fields" in resolved ? 2 : WIRE[f.type] ?? (f.repeated && r.oneIn(2) ? 2 : 0))
      : r.below(8);
    if (r.oneIn(10)) wire = r.below(8);
    varint(w, (id << 3) | wire, r);
    switch (wire) {
      case 0:
        varint(w, r.interesting32(), r);
        break;
      case 1:
        w.u32(r.interesting32()).u32(r.interesting32());
        break;
      case 5:
        w.u32(r.interesting32());
        break;
      case 2: {
        const body = resolved && "fields" in resolved && depth < 4
          ? fields(resolved as protobuf.Type, r, depth + 1)
          : r.bytes(r.below(24));
        varint(w, r.oneIn(10) ? body.length + r.below(8) : body.length, r);
        w.put(body);
        break;
      }
      default:
        break;
    }
  }
  return w.finish();
}

/**
 * The protobuf target; an input is a u16 choosing the message type, then the bytes to decode.
 *
 * @example
 * ```ts
 * await protobufTarget.run(Uint8Array.of(0, 0)); // the first type, empty: "accepted"
 * ```
 */
export const protobufTarget: FuzzTarget = {
  name: "protobuf",
  description: "decode of every contract message type: a message, or DecodeError; re-encodes",
  generate(r: Prng): Uint8Array {
    const all = typeList();
    const index = r.below(all.length);
    const body = r.oneIn(8) ? r.bytes(r.below(64)) : fields(all[index], r, 0);
    const w = new ByteWriter().u16(index);
    return w.put(r.oneIn(3) ? mutate(body, r) : body).finish();
  },
  run(input: Uint8Array): Outcome {
    const all = typeList();
    const reader = new ByteReader(input);
    const t = all[reader.u16() % all.length];
    const body = reader.rest();
    let outcome: Outcome = "accepted";
    for (const codec of codecsOf(t)) {
      let msg: unknown;
      try {
        msg = codec.decode(body);
      } catch (e) {
        if (e instanceof DecodeError) {
          outcome = "rejected";
          continue;
        }
        throw e;
      }
      let again: Uint8Array;
      try {
        again = codec.encode(msg);
      } catch (e) {
        if (e instanceof EncodeError) continue; // e.g. an enum value the contract does not name
        throw e;
      }
      const back = codec.decode(again);
      if (!isDeepStrictEqual(normalise(back), normalise(msg))) {
        throw new InvariantError(
          `${codec.typeName}: decode(encode(m)) differs from m: ${show(msg)} vs ${show(back)}`,
        );
      }
    }
    return outcome;
  },
};

/** Bytes fields as plain arrays (views into different buffers compare by content). */
function normalise(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(normalise);
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalise(x)]));
  }
  return v;
}

function show(v: unknown): string {
  return JSON.stringify(normalise(v), (_k, x) => typeof x === "bigint" ? `${x}n` : x)
    .slice(0, 300);
}
