/**
 * Guest RAM sizes on command lines: plain numbers are MiB; K/M/G suffixes (optionally with
 * "iB" or "B"), as QEMU's `-m`.
 */

import { MAX_RAM_BYTES } from "./guest_memory.ts";

/** Parses a RAM size in bytes; throws a RangeError with a one-line message when it is bad. */
export function parseRamSize(text: string): number {
  const m = text.trim().match(/^(\d+(?:\.\d+)?)\s*([kmgKMG])?(?:i?[bB])?$/);
  if (!m) throw new RangeError(`bad memory size '${text}' (use e.g. 128, 128M or 1G)`);
  const unit =
    { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(m[2] ?? "m").toLowerCase() as "k" | "m" | "g"];
  const bytes = Number(m[1]) * unit;
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes % 4096 !== 0) {
    throw new RangeError(`memory size '${text}' must be a positive multiple of 4 KiB`);
  }
  if (bytes > MAX_RAM_BYTES) {
    throw new RangeError(`memory size '${text}' exceeds the supported ${MAX_RAM_BYTES >> 20}M`);
  }
  return bytes;
}
