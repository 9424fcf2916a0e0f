/**
 * The few packet formats the switch's own responders speak, read and written by hand:
 * Ethernet II, ARP, IPv4 (no options written), UDP and ICMP echo, with checksums.
 * Parsers return undefined for anything short or malformed; they never throw.
 * @module
 */

/** Ethertype of IPv4. */
export const ETH_IPV4 = 0x0800;
/** Ethertype of ARP. */
export const ETH_ARP = 0x0806;
/** Ethernet header length. */
export const ETH_HEADER = 14;
/** IP protocol number of ICMP. */
export const IP_ICMP = 1;
/** IP protocol number of UDP. */
export const IP_UDP = 17;
/** The broadcast MAC. */
export const BROADCAST_MAC: Uint8Array = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

/** "10.0.2.15" as a 32-bit unsigned number; undefined unless four octets 0..255. */
export function parseIp(s: string): number | undefined {
  const parts = s.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) {
    return undefined;
  }
  return parts.reduce((a, p) => a * 256 + Number(p), 0);
}

/** Dotted form of a 32-bit address. */
export function formatIp(ip: number): string {
  return [ip >>> 24, ip >>> 16 & 0xff, ip >>> 8 & 0xff, ip & 0xff].join(".");
}

/** Reads a big-endian 32-bit unsigned number. */
export function u32(b: Uint8Array, off: number): number {
  return (b[off] << 24 | b[off + 1] << 16 | b[off + 2] << 8 | b[off + 3]) >>> 0;
}

/** Writes a big-endian 32-bit number. */
export function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 24;
  b[off + 1] = v >>> 16;
  b[off + 2] = v >>> 8;
  b[off + 3] = v;
}

/** Reads a big-endian 16-bit number. */
export function u16(b: Uint8Array, off: number): number {
  return b[off] << 8 | b[off + 1];
}

/** Writes a big-endian 16-bit number. */
export function putU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v >>> 8;
  b[off + 1] = v;
}

/** The one's-complement sum of `b[off, off+len)` added to `sum` (not folded). */
function sum16(b: Uint8Array, off: number, len: number, sum = 0): number {
  let i = 0;
  for (; i + 1 < len; i += 2) sum += b[off + i] << 8 | b[off + i + 1];
  if (i < len) sum += b[off + i] << 8;
  return sum;
}

function fold(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/** Internet checksum (RFC 1071) of `b[off, off+len)`. */
export function inetChecksum(b: Uint8Array, off: number, len: number, initial = 0): number {
  return ~fold(sum16(b, off, len, initial)) & 0xffff;
}

/** An Ethernet frame: header and payload (no FCS). */
export interface EthFrame {
  dst: Uint8Array;
  src: Uint8Array;
  type: number;
  payload: Uint8Array;
}

/** Splits an Ethernet II frame; undefined if shorter than the header. */
export function parseEth(f: Uint8Array): EthFrame | undefined {
  if (f.length < ETH_HEADER) return undefined;
  return {
    dst: f.subarray(0, 6),
    src: f.subarray(6, 12),
    type: u16(f, 12),
    payload: f.subarray(ETH_HEADER),
  };
}

/** An Ethernet II frame, padded to the 60-byte minimum. */
export function buildEth(
  dst: Uint8Array,
  src: Uint8Array,
  type: number,
  payload: Uint8Array,
): Uint8Array {
  const f = new Uint8Array(Math.max(60, ETH_HEADER + payload.length));
  f.set(dst, 0);
  f.set(src, 6);
  putU16(f, 12, type);
  f.set(payload, ETH_HEADER);
  return f;
}

/** An ARP packet for IPv4 over Ethernet. */
export interface Arp {
  /** 1 request, 2 reply. */
  op: number;
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

/** Parses an IPv4-over-Ethernet ARP packet; undefined for anything else. */
export function parseArp(p: Uint8Array): Arp | undefined {
  if (p.length < 28 || u16(p, 0) !== 1 || u16(p, 2) !== ETH_IPV4 || p[4] !== 6 || p[5] !== 4) {
    return undefined;
  }
  return {
    op: u16(p, 6),
    senderMac: p.slice(8, 14),
    senderIp: u32(p, 14),
    targetMac: p.slice(18, 24),
    targetIp: u32(p, 24),
  };
}

/** The 28 bytes of an ARP packet. */
export function buildArp(a: Arp): Uint8Array {
  const p = new Uint8Array(28);
  putU16(p, 0, 1);
  putU16(p, 2, ETH_IPV4);
  p[4] = 6;
  p[5] = 4;
  putU16(p, 6, a.op);
  p.set(a.senderMac, 8);
  putU32(p, 14, a.senderIp);
  p.set(a.targetMac, 18);
  putU32(p, 24, a.targetIp);
  return p;
}

/** An IPv4 packet (header fields we use) and its payload. */
export interface Ipv4 {
  protocol: number;
  src: number;
  dst: number;
  ttl: number;
  payload: Uint8Array;
}

/**
 * Parses an IPv4 packet: version 4, sane header length, valid header checksum, total
 * length within the buffer (Ethernet padding is cut off); fragments are refused.
 */
export function parseIpv4(p: Uint8Array): Ipv4 | undefined {
  if (p.length < 20 || p[0] >> 4 !== 4) return undefined;
  const ihl = (p[0] & 0xf) * 4;
  const total = u16(p, 2);
  if (ihl < 20 || total < ihl || total > p.length) return undefined;
  if (inetChecksum(p, 0, ihl) !== 0) return undefined;
  // More-fragments flag or a fragment offset: not for our responders.
  if ((u16(p, 6) & 0x3fff) !== 0) return undefined;
  return {
    protocol: p[9],
    ttl: p[8],
    src: u32(p, 12),
    dst: u32(p, 16),
    payload: p.subarray(ihl, total),
  };
}

let ipId = 0;

/** An IPv4 packet with a 20-byte header and its checksum. */
export function buildIpv4(
  protocol: number,
  src: number,
  dst: number,
  payload: Uint8Array,
  ttl = 64,
): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p[0] = 0x45;
  putU16(p, 2, p.length);
  ipId = (ipId + 1) & 0xffff;
  putU16(p, 4, ipId);
  p[8] = ttl;
  p[9] = protocol;
  putU32(p, 12, src);
  putU32(p, 16, dst);
  putU16(p, 10, inetChecksum(p, 0, 20));
  p.set(payload, 20);
  return p;
}

/** A UDP datagram. */
export interface Udp {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

function pseudoHeaderSum(src: number, dst: number, protocol: number, len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + len;
}

/** Parses the UDP datagram of `ip`; a nonzero checksum must be right. */
export function parseUdp(ip: Ipv4): Udp | undefined {
  const u = ip.payload;
  if (ip.protocol !== IP_UDP || u.length < 8) return undefined;
  const len = u16(u, 4);
  if (len < 8 || len > u.length) return undefined;
  if (u16(u, 6) !== 0) {
    const initial = pseudoHeaderSum(ip.src, ip.dst, IP_UDP, len);
    if (inetChecksum(u, 0, len, initial) !== 0) return undefined;
  }
  return { srcPort: u16(u, 0), dstPort: u16(u, 2), payload: u.subarray(8, len) };
}

/** A UDP datagram with its checksum (over the pseudo header of `src` → `dst`). */
export function buildUdp(
  src: number,
  dst: number,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
): Uint8Array {
  const u = new Uint8Array(8 + payload.length);
  putU16(u, 0, srcPort);
  putU16(u, 2, dstPort);
  putU16(u, 4, u.length);
  u.set(payload, 8);
  const c = inetChecksum(u, 0, u.length, pseudoHeaderSum(src, dst, IP_UDP, u.length));
  // A computed 0 is sent as 0xffff: 0 means "no checksum" in UDP over IPv4.
  putU16(u, 6, c === 0 ? 0xffff : c);
  return u;
}

/** A whole Ethernet/IPv4/UDP frame. */
export function buildUdpFrame(
  dstMac: Uint8Array,
  srcMac: Uint8Array,
  src: number,
  dst: number,
  srcPort: number,
  dstPort: number,
  payload: Uint8Array,
): Uint8Array {
  const udp = buildUdp(src, dst, srcPort, dstPort, payload);
  return buildEth(dstMac, srcMac, ETH_IPV4, buildIpv4(IP_UDP, src, dst, udp));
}

/** The ICMP echo reply to an echo request `icmp` (type 8), or undefined. */
export function icmpEchoReply(icmp: Uint8Array): Uint8Array | undefined {
  if (icmp.length < 8 || icmp[0] !== 8 || inetChecksum(icmp, 0, icmp.length) !== 0) {
    return undefined;
  }
  const r = icmp.slice();
  r[0] = 0;
  r[1] = 0;
  putU16(r, 2, 0);
  putU16(r, 2, inetChecksum(r, 0, r.length));
  return r;
}
