import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  chunks,
  HASH_BYTES,
  HASHES_PER_INDEX,
  indexPages,
  PAGE_SIZE,
  pageHashAt,
  scanRam,
} from "./ram_pages.ts";
import { parseMachineFlags } from "./machine_flags.ts";
import { SnapshotError } from "./snapshot_error.ts";

Deno.test("scanRam: zero pages skipped, equal pages stored once, copies not views", () => {
  const ram = new Uint8Array(new SharedArrayBuffer(5 * PAGE_SIZE));
  ram.fill(7, 1 * PAGE_SIZE, 2 * PAGE_SIZE);
  ram.fill(7, 3 * PAGE_SIZE, 4 * PAGE_SIZE);
  ram[4 * PAGE_SIZE + 4095] = 1; // one byte at the very end still makes a page non-zero
  const scan = scanRam(ram);
  assert.equal(scan.pages, 5);
  assert.equal(scan.zeroPages, 2);
  assert.equal(scan.distinct.size, 2);
  const h7 = createHash("sha256").update(new Uint8Array(PAGE_SIZE).fill(7)).digest("hex");
  assert.equal(pageHashAt(scan.hashes, 1), h7);
  assert.equal(pageHashAt(scan.hashes, 3), h7);
  assert.equal(pageHashAt(scan.hashes, 0), undefined);
  assert.equal(pageHashAt(scan.hashes, 2), undefined);
  ram.fill(9, 1 * PAGE_SIZE, 2 * PAGE_SIZE);
  assert.equal(scan.distinct.get(h7)![0], 7, "the scan kept its own copy");
});

Deno.test("indexPages: 2048 hashes per index page, the last one shorter", () => {
  const hashes = new Uint8Array((HASHES_PER_INDEX + 3) * HASH_BYTES).fill(1);
  const ips = indexPages(hashes);
  assert.deepEqual(ips.map((p) => p.length), [HASHES_PER_INDEX * HASH_BYTES, 3 * HASH_BYTES]);
  assert.deepEqual(chunks(new Uint8Array(PAGE_SIZE + 1)).map((c) => c.length), [PAGE_SIZE, 1]);
});

Deno.test("parseMachineFlags: the manifest's flags are checked, one line per problem", () => {
  const ok = { ramSize: 1 << 28, disks: ["disk0"], nics: [], rng: true, append: "console=ttyS0" };
  assert.deepEqual(parseMachineFlags(JSON.stringify(ok)), ok);
  assert.throws(() => parseMachineFlags("{"), SnapshotError);
  assert.throws(
    () => parseMachineFlags(JSON.stringify({ ...ok, ramSize: 1000 })),
    /no valid ramSize/,
  );
  assert.throws(() => parseMachineFlags(JSON.stringify({ ...ok, disks: [1] })), /no valid disks/);
  assert.throws(() => parseMachineFlags(JSON.stringify({ ...ok, harts: 0 })), /no valid harts/);
});
