/**
 * The run log's bytes: version 2 frames round-trip (bytes deflated when that is smaller), a
 * frame cut short by a crash ends the log, version 1 (JSON lines, base64) is still read, and
 * another version is refused with what to do.
 */
import assert from "node:assert/strict";
import { encodeEntry, encodeLog, type LogEntry, LogFormatError, parseLog } from "./log_format.ts";

const header = { vmesh: "run-log", version: 2, images: "ab", ramSize: 1 << 20, harts: 1 };

Deno.test("version 2: entries round-trip, disk data deflated, a torn frame ends the log", () => {
  const zeros = new Uint8Array(65536);
  const noise = crypto.getRandomValues(new Uint8Array(4096));
  const entries: LogEntry[] = [
    { s: -1, info: "vda", v: { sizeBytes: 1 << 20, readOnly: false, discard: true } },
    { s: 3, blk: "vda", q: 0, ok: true, d: zeros },
    { s: 4, blk: "vda", q: 1, ok: true, d: noise },
    { s: 5, blk: "vda", q: 2, ok: false },
    { s: 6, net: 0, f: new Uint8Array([1, 2, 3]) },
    { s: 7, in: new TextEncoder().encode("ls\n") },
    { s: 8, hold: 1 },
    { s: 9, i: 100, h: "0011223344556677:100", p: { ram: "00112233" } },
    { s: 10, end: 0, i: 120 },
  ];
  const bytes = encodeLog(header, entries);
  const back = parseLog(bytes, "x.log");
  assert.deepEqual(back.header, header);
  assert.deepEqual(back.entries, entries);
  // 64 KiB of zeros take a few dozen bytes; random data is stored raw (no larger than itself).
  assert.ok(encodeEntry(entries[1]).length < 200);
  assert.ok(encodeEntry(entries[2]).length <= noise.length + 80);
  // A crash mid-frame: the entries before it are there.
  const torn = parseLog(bytes.subarray(0, bytes.length - 5), "x.log");
  assert.deepEqual(torn.entries, entries.slice(0, -1));
});

Deno.test("version 1 logs are still read; another version is refused with what to do", () => {
  const v1 = [
    JSON.stringify({ ...header, version: 1 }),
    JSON.stringify({ s: 2, in: btoa("hi") }),
    JSON.stringify({ s: 3, blk: "vda", q: 0, ok: true, d: btoa("\x00\x01") }),
    "",
  ].join("\n");
  const { entries } = parseLog(new TextEncoder().encode(v1), "old.log");
  assert.deepEqual(entries, [
    { s: 2, in: new TextEncoder().encode("hi") },
    { s: 3, blk: "vda", q: 0, ok: true, d: new Uint8Array([0, 1]) },
  ]);
  const v9 = new TextEncoder().encode(JSON.stringify({ ...header, version: 9 }) + "\n");
  assert.throws(() => parseLog(v9, "new.log"), (e: Error) => {
    assert.ok(e instanceof LogFormatError);
    assert.match(e.message, /version 9; this vmesh reads versions 1 and 2 \(record it again/);
    return true;
  });
  assert.throws(() => parseLog(new TextEncoder().encode("hello\n"), "t.txt"), LogFormatError);
});
