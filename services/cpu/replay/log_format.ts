/**
 * The bytes of a run log. Version 2 (written now): the header as one JSON line, then frames
 * `[u32 json length][u32 data length][JSON][data]` (little-endian), where an entry's bytes
 * (a block read's data, a received frame, console input) are the frame's data, raw-deflated
 * when that is smaller (`z: 1`), instead of base64 inside the JSON. Version 1 (JSON lines with
 * base64, written before) is still read. A frame cut short by a crash ends the log there.
 *
 * @example
 * ```ts
 * // const { header, entries } = parseLog(await Deno.readFile("boot.log"), "boot.log");
 * // await Deno.writeFile("copy.log", encodeLog(header, entries));
 * ```
 * @module
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";

/** What a device did at a step (device_log.ts): a block request's completion, a frame in. */
export type DeviceEntry =
  | { s: number; blk: string; q: number; ok: boolean; d?: Uint8Array }
  | { s: number; net: number; f: Uint8Array }
  | { s: number; info: string; v: { sizeBytes: number; readOnly: boolean; discard: boolean } }
  | { s: number; hold: 1 };

/** One entry of a run log after its header. */
export type LogEntry =
  | { s: number; in: Uint8Array }
  | { s: number; i: number; h: string; p?: Record<string, string> }
  | { s: number; end: number; i: number }
  | DeviceEntry;

/** A log that cannot be read (or replayed) here. */
export class LogFormatError extends Error {
  override name = "LogFormatError";
}

/** The entry fields that hold bytes. */
const BYTE_FIELDS = ["d", "f", "in"] as const;
/** Data shorter than this is stored raw (deflate would not pay). */
const DEFLATE_MIN = 64;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The header line of a version-2 log. */
export function encodeHeader(header: object): Uint8Array {
  return enc.encode(JSON.stringify(header) + "\n");
}

/** One entry as a version-2 frame. */
export function encodeEntry(e: LogEntry): Uint8Array {
  let data: Uint8Array = new Uint8Array(0);
  let json: Record<string, unknown> = e as unknown as Record<string, unknown>;
  for (const k of BYTE_FIELDS) {
    const v = json[k];
    if (!(v instanceof Uint8Array)) continue;
    const { [k]: _, ...rest } = json;
    json = { ...rest, b: k };
    data = v;
    if (v.length >= DEFLATE_MIN) {
      const z = deflateRawSync(v, { level: 6 });
      if (z.length < v.length) {
        data = new Uint8Array(z.buffer, z.byteOffset, z.length);
        json.z = 1;
      }
    }
    break;
  }
  const j = enc.encode(JSON.stringify(json));
  const out = new Uint8Array(8 + j.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, j.length, true);
  v.setUint32(4, data.length, true);
  out.set(j, 8);
  out.set(data, 8 + j.length);
  return out;
}

/** A whole version-2 log (tests write tampered copies with it). */
export function encodeLog(header: object, entries: LogEntry[]): Uint8Array {
  const parts = [encodeHeader(header), ...entries.map(encodeEntry)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) out.set(p, (off += p.length) - p.length);
  return out;
}

/** Header and entries of a version-1 or version-2 log; `path` names it in errors. */
export function parseLog(
  bytes: Uint8Array,
  path: string,
): { header: Record<string, unknown>; entries: LogEntry[] } {
  const nl = bytes.indexOf(10);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(dec.decode(bytes.subarray(0, nl < 0 ? bytes.length : nl)));
  } catch {
    throw new LogFormatError(`${path}: not a vmesh run log (its first line is not JSON)`);
  }
  if (header?.vmesh !== "run-log") throw new LogFormatError(`${path}: not a vmesh run log`);
  const entries: LogEntry[] = [];
  const body = bytes.subarray(nl + 1);
  if (header.version === 1) {
    for (const l of dec.decode(body).split("\n")) {
      if (l.trim() === "") continue;
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(l);
      } catch {
        throw new LogFormatError(`${path}: not a vmesh run log (a line is not JSON)`);
      }
      for (const k of BYTE_FIELDS) if (typeof e[k] === "string") e[k] = fromB64(e[k] as string);
      entries.push(e as unknown as LogEntry);
    }
  } else if (header.version === 2) {
    const view = new DataView(body.buffer, body.byteOffset, body.length);
    let off = 0;
    while (off + 8 <= body.length) {
      const jl = view.getUint32(off, true), dl = view.getUint32(off + 4, true);
      if (off + 8 + jl + dl > body.length) break; // cut short by a crash: the log ends here
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(dec.decode(body.subarray(off + 8, off + 8 + jl)));
      } catch {
        throw new LogFormatError(`${path}: damaged run log (an entry at byte ${off} is not JSON)`);
      }
      if (typeof e.b === "string") {
        const raw = body.slice(off + 8 + jl, off + 8 + jl + dl);
        const z = e.z === 1 ? inflateRawSync(raw) : raw;
        e[e.b] = new Uint8Array(z.buffer, z.byteOffset, z.length);
        delete e.b;
        delete e.z;
      }
      entries.push(e as unknown as LogEntry);
      off += 8 + jl + dl;
    }
  } else {
    throw new LogFormatError(
      `${path}: a run log of version ${header.version}; this vmesh reads versions 1 and 2 ` +
        `(record it again with this vmesh)`,
    );
  }
  return { header, entries };
}

/** The bytes of base64 `s`. */
export const fromB64 = (s: string): Uint8Array => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
