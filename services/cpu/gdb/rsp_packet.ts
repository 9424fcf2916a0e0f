/**
 * GDB remote serial protocol framing: `$payload#cs` packets with a modulo-256 checksum, `}`
 * escaping of binary data, the `+`/`-` acknowledgements and the out-of-band Ctrl-C (0x03).
 */

/** Modulo-256 sum of the bytes of `payload` (a latin1 string: one char per byte). */
export function rspChecksum(payload: string): number {
  let sum = 0;
  for (let i = 0; i < payload.length; i++) sum = (sum + payload.charCodeAt(i)) & 0xff;
  return sum;
}

/**
 * Frames `payload` as one packet, escaping `$ # } *` so the receiver never sees them raw.
 *
 * @example
 * ```ts
 * encodePacket("OK"); // "$OK#9a"
 * ```
 */
export function encodePacket(payload: string): string {
  let body = "";
  for (let i = 0; i < payload.length; i++) {
    const c = payload.charCodeAt(i);
    body += c === 0x23 || c === 0x24 || c === 0x7d || c === 0x2a
      ? "}" + String.fromCharCode(c ^ 0x20)
      : payload[i];
  }
  return `$${body}#${rspChecksum(body).toString(16).padStart(2, "0")}`;
}

/** Undoes `}` escaping (binary data of `X` and `vFile` packets). */
export function unescapeBinary(data: string): string {
  let out = "";
  for (let i = 0; i < data.length; i++) {
    if (data[i] === "}" && i + 1 < data.length) {
      out += String.fromCharCode(data.charCodeAt(++i) ^ 0x20);
    } else out += data[i];
  }
  return out;
}

/** What the reader found in the byte stream. */
export type RspEvent =
  | { kind: "packet"; payload: string }
  | { kind: "interrupt" }
  | { kind: "ack" }
  | { kind: "nack" }
  | { kind: "bad-checksum"; payload: string };

/** Largest packet body accepted; longer input is dropped as garbage (bounded memory). */
export const MAX_PACKET = 0x10000;

/**
 * Incremental packet parser: feed it whatever the socket delivers; it returns complete events.
 * Bytes outside a packet other than `+ - 0x03` are ignored, as gdb's own stubs do.
 *
 * @example
 * ```ts
 * const r = new RspReader();
 * r.feed(new TextEncoder().encode("+$g#67")); // [{kind:"ack"}, {kind:"packet", payload:"g"}]
 * ```
 */
export class RspReader {
  #state: "idle" | "body" | "cs1" | "cs2" = "idle";
  #body = "";
  #cs = "";

  /** Parses `bytes`; returns the events they complete, in order. */
  feed(bytes: Uint8Array): RspEvent[] {
    const out: RspEvent[] = [];
    for (const b of bytes) {
      switch (this.#state) {
        case "idle":
          if (b === 0x24) {
            this.#state = "body";
            this.#body = "";
          } else if (b === 0x03) out.push({ kind: "interrupt" });
          else if (b === 0x2b) out.push({ kind: "ack" });
          else if (b === 0x2d) out.push({ kind: "nack" });
          break;
        case "body":
          if (b === 0x23) this.#state = "cs1";
          else if (b === 0x24) this.#body = ""; // a new start: the old packet was cut off
          else if (this.#body.length >= MAX_PACKET) this.#state = "idle";
          else this.#body += String.fromCharCode(b);
          break;
        case "cs1":
          this.#cs = String.fromCharCode(b);
          this.#state = "cs2";
          break;
        case "cs2": {
          this.#state = "idle";
          const cs = this.#cs + String.fromCharCode(b);
          const payload = this.#body;
          this.#body = "";
          if (/^[0-9a-fA-F]{2}$/.test(cs) && parseInt(cs, 16) === rspChecksum(payload)) {
            out.push({ kind: "packet", payload });
          } else out.push({ kind: "bad-checksum", payload });
        }
      }
    }
    return out;
  }
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Bytes of an even-length hex string; null when it is not one. */
export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Little-endian hex of the low `bytes` bytes of `v` (gdb's register encoding). */
export function leHex(v: bigint, bytes: number): string {
  let s = "";
  for (let i = 0; i < bytes; i++) {
    s += Number((v >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, "0");
  }
  return s;
}

/** The value of little-endian hex; null when malformed. */
export function parseLeHex(hex: string): bigint | null {
  const bytes = fromHex(hex);
  if (bytes === null || bytes.length === 0) return null;
  let v = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}
