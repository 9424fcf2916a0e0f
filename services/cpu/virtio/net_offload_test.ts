import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { VirtioMmioReg as R, VirtioMmioTransport } from "./mmio_transport.ts";
import { VIRTIO_NET_HDR_SIZE, VirtioNet } from "./net.ts";
import { completeChecksum, segmentTcpV4 } from "./net_offload.ts";
import { TestDriver } from "./test_driver.ts";

/** RFC 1071 sum of 16-bit words, written out plainly (the check for the code under test). */
function rfc1071(words: number[]): number {
  let s = 0;
  for (const w of words) {
    s += w;
    s = (s & 0xffff) + (s >>> 16);
  }
  return s;
}

function wordsOf(b: Uint8Array, from: number, to: number): number[] {
  const w: number[] = [];
  for (let i = from; i < to; i += 2) w.push((b[i] << 8) | (i + 1 < to ? b[i + 1] : 0));
  return w;
}

/** True when the frame's IPv4 header and TCP checksums both verify. */
function checksumsValid(f: Uint8Array): boolean {
  const ihl = (f[14] & 0xf) * 4;
  const ipOk = rfc1071(wordsOf(f, 14, 14 + ihl)) === 0xffff;
  const tcpLen = f.length - 14 - ihl;
  const pseudo = [...wordsOf(f, 26, 34), 6, tcpLen];
  return ipOk && rfc1071([...pseudo, ...wordsOf(f, 14 + ihl, f.length)]) === 0xffff;
}

/** A TCP/IPv4 frame with `payload` bytes, TCP flags `flags`, checksum field = the pseudo sum. */
function tcpFrame(payload: number, flags: number): Uint8Array {
  const f = new Uint8Array(14 + 20 + 20 + payload);
  f.set([0x52, 0x54, 0, 0, 0, 2, 0x52, 0x54, 0, 0, 0, 1, 0x08, 0x00], 0);
  const total = 40 + payload; // as Linux leaves it in a super-packet (may exceed 16 bits: no)
  f.set([0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0], 14);
  f.set([10, 0, 0, 1, 10, 0, 0, 2], 26);
  f.set([0x30, 0x39, 0x00, 0x50, 0xff, 0xff, 0xff, 0x00, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff], 34);
  for (let i = 0; i < payload; i++) f[54 + i] = (i * 7 + 3) & 0xff;
  // IPv4 header checksum as the guest computes it.
  const ipc = ~rfc1071(wordsOf(f, 14, 34)) & 0xffff;
  f[24] = ipc >> 8;
  f[25] = ipc & 0xff;
  // CHECKSUM_PARTIAL: the TCP checksum field holds the folded pseudo-header sum.
  const ps = rfc1071([...wordsOf(f, 26, 34), 6, 20 + payload]);
  f[50] = ps >> 8;
  f[51] = ps & 0xff;
  return f;
}

Deno.test("net offload: a checksum left to the device verifies afterwards", () => {
  for (const n of [0, 1, 2, 1001, 1460]) {
    const f = tcpFrame(n, 0x18);
    assert.equal(checksumsValid(f), false, `payload ${n}: not valid before`);
    assert.equal(completeChecksum(f, 34, 16), true);
    assert.equal(checksumsValid(f), true, `payload ${n}`);
  }
  assert.equal(completeChecksum(new Uint8Array(40), 39, 16), false, "offsets past the end");
});

Deno.test("net offload: TSO splits a TCP/IPv4 super-packet as a NIC does", () => {
  const mss = 1448;
  const f = tcpFrame(4000, 0x80 | 0x18 | 0x01); // CWR, ACK, PSH, FIN
  const segs = segmentTcpV4(f, mss)!;
  assert.deepEqual(segs.map((s) => s.length - 54), [1448, 1448, 1104]);
  const joined = segs.flatMap((s) => [...s.subarray(54)]);
  assert.deepEqual(joined, [...f.subarray(54)], "payload in order, nothing lost");
  segs.forEach((s, i) => {
    assert.ok(checksumsValid(s), `segment ${i} checksums`);
    assert.equal((s[16] << 8) | s[17], s.length - 14, "IPv4 total length");
    assert.equal((s[18] << 8) | s[19], 0x1234 + i, "IPv4 id");
    const seq = ((s[38] << 24) | (s[39] << 16) | (s[40] << 8) | s[41]) >>> 0;
    assert.equal(seq, (0xffffff00 + i * mss) >>> 0, "sequence number (wraps)");
  });
  assert.deepEqual(segs.map((s) => s[47]), [0x80 | 0x10, 0x10, 0x18 | 0x01], "CWR/PSH/FIN");
  assert.equal(segmentTcpV4(f, 0), null);
  const udp = tcpFrame(100, 0x10);
  udp[23] = 17;
  assert.equal(segmentTcpV4(udp, mss), null, "not TCP");
});

Deno.test("net offload: the device segments a TSO chain the driver sends and completes checksums", () => {
  const mem = new GuestMemory(1 << 20);
  const sent: Uint8Array[] = [];
  const net = new VirtioNet({ send: (x) => void sent.push(x) }, { mac: "52:54:00:12:34:56" });
  const d = new TestDriver(mem, new VirtioMmioTransport(mem, net, () => {}));
  d.init();
  const send = (f: Uint8Array, hdr: number[]) => {
    const b = d.alloc(VIRTIO_NET_HDR_SIZE + f.length);
    d.put(b, Uint8Array.from([...hdr, 0, 0]));
    d.put(b + VIRTIO_NET_HDR_SIZE, f);
    d.submit(1, [{ addr: b, len: VIRTIO_NET_HDR_SIZE + f.length }]);
  };
  // flags NEEDS_CSUM, gso TCPV4, hdr_len 54, gso_size 1448, csum_start 34, csum_offset 16.
  send(tcpFrame(3000, 0x18), [1, 1, 54, 0, 0xa8, 0x05, 34, 0, 16, 0]);
  assert.deepEqual(sent.map((s) => s.length - 54), [1448, 1448, 104]);
  assert.ok(sent.every(checksumsValid));
  // NEEDS_CSUM alone.
  send(tcpFrame(500, 0x18), [1, 0, 0, 0, 0, 0, 34, 0, 16, 0]);
  assert.equal(sent.length, 4);
  assert.ok(checksumsValid(sent[3]));
  // A GSO type not offered (UDP) is not sent.
  send(tcpFrame(500, 0x18), [1, 3, 0, 0, 0xa8, 0x05, 34, 0, 16, 0]);
  assert.equal(sent.length, 4);
  assert.equal(net.stats.txDropped, 1);
  assert.equal(d.reg(R.DEVICE_ID), 1);
});
