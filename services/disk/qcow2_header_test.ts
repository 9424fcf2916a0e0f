import assert from "node:assert/strict";
import {
  decodeQcow2Header,
  encodeQcow2Header,
  EXT_FEATURE_NAMES,
  isQcow2,
  Qcow2FormatError,
} from "./qcow2_header.ts";

const cs = 65536;
const base = {
  clusterBits: 16,
  size: 1 << 30,
  l1Size: 2,
  l1TableOffset: 3 * cs,
  refcountTableOffset: cs,
  refcountTableClusters: 1,
};

Deno.test("qcow2 header: v3 and v2 round trip with backing file and format", () => {
  for (const version of [2, 3] as const) {
    const head = encodeQcow2Header({
      ...base,
      version,
      backingFile: "../base.img",
      backingFormat: "raw",
    });
    assert.ok(isQcow2(head));
    const h = decodeQcow2Header(head, 4 * cs);
    assert.equal(h.version, version);
    assert.equal(h.size, 1 << 30);
    assert.equal(h.l1Size, 2);
    assert.equal(h.l1TableOffset, 3 * cs);
    assert.equal(h.backingFile, "../base.img");
    assert.equal(h.backingFormat, "raw");
    assert.equal(h.refcountOrder, 4);
    assert.equal(h.headerLength, version === 3 ? 112 : 72);
  }
});

Deno.test("qcow2 header: an unknown incompatible feature is named from the feature table", () => {
  const head = encodeQcow2Header({ ...base, version: 3 });
  const v = new DataView(head.buffer);
  v.setUint32(76, 1 << 9); // incompatible bit 9
  // Replace the end marker at 112 by a feature name table with one entry, then an end marker.
  v.setUint32(112, EXT_FEATURE_NAMES);
  v.setUint32(116, 48);
  head[120] = 0; // type: incompatible
  head[121] = 9; // bit
  head.set(new TextEncoder().encode("frobnication"), 122);
  assert.throws(() => decodeQcow2Header(head, 4 * cs), (e) => {
    assert.ok(e instanceof Qcow2FormatError);
    assert.match(e.message, /unsupported incompatible features: frobnication/);
    return true;
  });
});

Deno.test("qcow2 header: a header extension running past the cluster is refused", () => {
  const head = encodeQcow2Header({ ...base, version: 3 });
  const v = new DataView(head.buffer);
  v.setUint32(112, 0x12345678);
  v.setUint32(116, cs);
  assert.throws(() => decodeQcow2Header(head, 4 * cs), /runs past the first cluster/);
});
