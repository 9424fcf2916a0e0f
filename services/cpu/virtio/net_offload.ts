/**
 * Transmit offloads of virtio-net done by the device (virtio 1.2, 5.1.6.2): the checksum a
 * driver left for the device (`VIRTIO_NET_HDR_F_NEEDS_CSUM`, feature CSUM) and TCP segmentation
 * of an IPv4 super-packet (`VIRTIO_NET_HDR_GSO_TCPV4`, feature HOST_TSO4). Both run here in the
 * host instead of in the emulated guest, so the frames that leave the device are ordinary,
 * complete Ethernet frames: the switch, other VMs and uplinks need to know nothing of offloads.
 * @module
 */

/** virtio_net_hdr.flags: the device must fill in the checksum. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
/** virtio_net_hdr.gso_type values. */
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

/** The fields of a virtio_net_hdr that matter on transmit. */
export interface NetHdr {
  flags: number;
  gsoType: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

/** Decodes the first 10 bytes of a virtio_net_hdr (little-endian fields). */
export function parseNetHdr(b: Uint8Array): NetHdr {
  return {
    flags: b[0],
    gsoType: b[1],
    gsoSize: b[4] | (b[5] << 8),
    csumStart: b[6] | (b[7] << 8),
    csumOffset: b[8] | (b[9] << 8),
  };
}

/** The 32-bit running ones'-complement sum of `b[start, end)` (big-endian 16-bit words). */
function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  let i = start;
  for (; i + 1 < end; i += 2) acc += (b[i] << 8) | b[i + 1];
  if (i < end) acc += b[i] << 8;
  return acc;
}

/** Folds a running sum to 16 bits and complements it. */
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return ~acc & 0xffff;
}

/**
 * Fills in a checksum the driver left to the device: the ones'-complement sum from
 * `start` to the end (the field already holds the pseudo-header sum), stored at
 * `start + offset`. Returns false (frame untouched) when the offsets fall outside the frame.
 */
export function completeChecksum(frame: Uint8Array, start: number, offset: number): boolean {
  const at = start + offset;
  if (start >= frame.length || at + 2 > frame.length) return false;
  let c = fold(sum16(frame, start, frame.length));
  // A UDP checksum of 0 means "none": the spec (and Linux) send 0xffff instead.
  if (c === 0 && offset === 6) c = 0xffff;
  frame[at] = c >> 8;
  frame[at + 1] = c & 0xff;
  return true;
}

/** Where the IPv4 header starts in an Ethernet frame (after a VLAN tag too), or -1. */
function ipv4Start(f: Uint8Array): number {
  if (f.length >= 34 && f[12] === 0x08 && f[13] === 0x00) return 14;
  if (f.length >= 38 && f[12] === 0x81 && f[13] === 0x00 && f[16] === 0x08 && f[17] === 0x00) {
    return 18;
  }
  return -1;
}

/**
 * Splits a TCP/IPv4 super-packet into frames of at most `mss` payload bytes each, as a NIC's
 * TSO does: headers copied, IPv4 total length, id (+1 per segment) and header checksum, TCP
 * sequence number, flags (FIN and PSH on the last segment only, CWR on the first only) and
 * TCP checksum per segment. Returns null when the frame is not TCP over IPv4 or `mss` is 0.
 */
export function segmentTcpV4(frame: Uint8Array, mss: number): Uint8Array[] | null {
  const ip = ipv4Start(frame);
  if (ip < 0 || mss <= 0 || (frame[ip] >> 4) !== 4 || frame[ip + 9] !== 6) return null;
  const ihl = (frame[ip] & 0xf) * 4;
  const tcp = ip + ihl;
  if (ihl < 20 || tcp + 20 > frame.length) return null;
  const tcpLen = (frame[tcp + 12] >> 4) * 4;
  const hdrEnd = tcp + tcpLen;
  if (tcpLen < 20 || hdrEnd > frame.length) return null;
  const payload = frame.length - hdrEnd;
  const count = Math.max(1, Math.ceil(payload / mss));
  const id0 = (frame[ip + 4] << 8) | frame[ip + 5];
  const seq0 = ((frame[tcp + 4] << 24) | (frame[tcp + 5] << 16) | (frame[tcp + 6] << 8) |
    frame[tcp + 7]) >>> 0;
  const flags0 = frame[tcp + 13];
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const from = hdrEnd + i * mss;
    const n = Math.min(mss, frame.length - from);
    const seg = new Uint8Array(hdrEnd + n);
    seg.set(frame.subarray(0, hdrEnd), 0);
    seg.set(frame.subarray(from, from + n), hdrEnd);
    // IPv4: total length, id, header checksum.
    const total = ihl + tcpLen + n;
    seg[ip + 2] = total >> 8;
    seg[ip + 3] = total & 0xff;
    const id = (id0 + i) & 0xffff;
    seg[ip + 4] = id >> 8;
    seg[ip + 5] = id & 0xff;
    seg[ip + 10] = seg[ip + 11] = 0;
    const ipc = fold(sum16(seg, ip, tcp));
    seg[ip + 10] = ipc >> 8;
    seg[ip + 11] = ipc & 0xff;
    // TCP: sequence number, flags, checksum over the pseudo header and the segment.
    const seq = (seq0 + i * mss) >>> 0;
    seg[tcp + 4] = seq >>> 24;
    seg[tcp + 5] = (seq >>> 16) & 0xff;
    seg[tcp + 6] = (seq >>> 8) & 0xff;
    seg[tcp + 7] = seq & 0xff;
    let fl = flags0;
    if (i < count - 1) fl &= ~0x09; // FIN, PSH
    if (i > 0) fl &= ~0x80; // CWR
    seg[tcp + 13] = fl;
    seg[tcp + 16] = seg[tcp + 17] = 0;
    const l4 = tcpLen + n;
    let acc = sum16(seg, ip + 12, ip + 20); // source and destination addresses
    acc += 6 + l4;
    const c = fold(sum16(seg, tcp, seg.length, acc));
    seg[tcp + 16] = c >> 8;
    seg[tcp + 17] = c & 0xff;
    out.push(seg);
  }
  return out;
}
