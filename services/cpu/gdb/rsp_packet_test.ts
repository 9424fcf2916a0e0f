import assert from "node:assert/strict";
import {
  encodePacket,
  fromHex,
  leHex,
  MAX_PACKET,
  parseLeHex,
  rspChecksum,
  RspReader,
  toHex,
  unescapeBinary,
} from "./rsp_packet.ts";

const bytes = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

Deno.test("rsp: checksums and framing as gdb computes them", () => {
  assert.equal(encodePacket("OK"), "$OK#9a");
  assert.equal(encodePacket(""), "$#00");
  assert.equal(rspChecksum("g"), 0x67);
  // `$ # } *` are escaped as `}` then the byte xor 0x20; the checksum covers the escaped body.
  assert.equal(
    encodePacket("a$b#c}d*"),
    `$a}\x04b}\x03c}]d}\x0a#${rspChecksum("a}\x04b}\x03c}]d}\x0a").toString(16).padStart(2, "0")}`,
  );
  assert.equal(unescapeBinary("a}\x04b}\x03c}]d}\x0a"), "a$b#c}d*");
});

Deno.test("rsp: the reader splits acks, interrupts and packets across any chunking", () => {
  const stream = bytes(`+$g#67-\x03${encodePacket("m80000000,4")}junk${encodePacket("qC")}`);
  const expected = [
    { kind: "ack" },
    { kind: "packet", payload: "g" },
    { kind: "nack" },
    { kind: "interrupt" },
    { kind: "packet", payload: "m80000000,4" },
    { kind: "packet", payload: "qC" },
  ];
  for (const chunk of [1, 2, 3, 7, stream.length]) {
    const r = new RspReader();
    const got = [];
    for (let i = 0; i < stream.length; i += chunk) {
      got.push(...r.feed(stream.subarray(i, i + chunk)));
    }
    assert.deepEqual(got, expected, `chunks of ${chunk}`);
  }
});

Deno.test("rsp: bad checksums are reported, oversized packets dropped, a new $ restarts", () => {
  const r = new RspReader();
  assert.deepEqual(r.feed(bytes("$g#00")), [{ kind: "bad-checksum", payload: "g" }]);
  assert.deepEqual(r.feed(bytes("$g#zz")), [{ kind: "bad-checksum", payload: "g" }]);
  assert.deepEqual(r.feed(bytes("$trunc$g#67")), [{ kind: "packet", payload: "g" }]);
  const huge = new Uint8Array(MAX_PACKET + 10).fill(0x61);
  assert.deepEqual(r.feed(new Uint8Array([0x24, ...huge, 0x23, 0x30, 0x30])), []);
  assert.deepEqual(r.feed(bytes("$?#3f")), [{ kind: "packet", payload: "?" }]);
});

Deno.test("rsp: hex helpers (little-endian registers, malformed input is null)", () => {
  assert.equal(leHex(0x80000720n, 8), "2007008000000000");
  assert.equal(parseLeHex("2007008000000000"), 0x80000720n);
  assert.equal(parseLeHex("zz"), null);
  assert.equal(parseLeHex(""), null);
  assert.equal(toHex(new Uint8Array([0, 0xab, 0x10])), "00ab10");
  assert.deepEqual(fromHex("00ab10"), new Uint8Array([0, 0xab, 0x10]));
  assert.equal(fromHex("abc"), null);
  assert.equal(fromHex("gg"), null);
});
