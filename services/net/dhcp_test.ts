import assert from "node:assert/strict";
import {
  buildDhcp,
  type DhcpMessage,
  DhcpOption,
  DhcpServer,
  DhcpType,
  ipBytes,
  parseCidr,
  parseDhcp,
} from "./dhcp.ts";
import { Gateway } from "./gateway.ts";
import { formatMac, parseMac } from "./mac.ts";
import {
  BROADCAST_MAC,
  buildArp,
  buildEth,
  buildIpv4,
  buildUdpFrame,
  ETH_ARP,
  ETH_IPV4,
  formatIp,
  inetChecksum,
  IP_ICMP,
  parseArp,
  parseEth,
  parseIp,
  parseIpv4,
  parseUdp,
  putU16,
} from "./packet.ts";
import { VirtualSwitch } from "./switch.ts";

const ip = (s: string) => parseIp(s)!;
const CLIENT = "52:54:00:aa:bb:01";

/** A client message as udhcpc sends it. */
function clientMsg(type: number, mac = CLIENT, extra: [number, Uint8Array][] = [], ciaddr = 0) {
  const m: DhcpMessage = {
    op: 1,
    xid: 0x12345678,
    flags: 0,
    ciaddr,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr: parseMac(mac),
    options: new Map<number, Uint8Array>([
      [DhcpOption.MESSAGE_TYPE, new Uint8Array([type])],
      [61, new Uint8Array([1, ...parseMac(mac)])],
      [55, new Uint8Array([1, 3, 6, 12, 15, 28, 42])],
      ...extra,
    ]),
  };
  return m;
}

/** The whole Ethernet frame of a client message (broadcast unless `ciaddr` is set). */
function clientFrame(m: DhcpMessage): Uint8Array {
  const mac = m.chaddr;
  return m.ciaddr
    ? buildUdpFrame(parseMac(GW_MAC()), mac, m.ciaddr, ip("10.0.2.2"), 68, 67, buildDhcp(m))
    : buildUdpFrame(BROADCAST_MAC, mac, 0, 0xffffffff, 68, 67, buildDhcp(m));
}

let gwMac = "";
const GW_MAC = () => gwMac;

/** A switch with a gateway on 10.0.2.0/24 and a client port that records what it gets. */
function rig(leasesFile?: string) {
  const sw = new VirtualSwitch("sw0");
  const gw = new Gateway(sw, {
    ...parseCidr("10.0.2.0/24"),
    gateway: ip("10.0.2.2"),
    dns: [ip("10.0.2.3")],
    leaseSecs: 600,
    leasesFile,
  });
  gwMac = formatMac(gw.mac);
  const got: Uint8Array[] = [];
  sw.join("vm", CLIENT, (f) => (got.push(f), true));
  /** Sends a frame from the client port and returns the frames it gets back. */
  const send = async (f: Uint8Array) => {
    got.length = 0;
    sw.input("vm", f);
    // The gateway answers from a microtask.
    await Promise.resolve();
    return got.slice();
  };
  /** Sends a DHCP message; returns the decoded reply (checking every layer) or undefined. */
  const dhcp = async (m: DhcpMessage) => {
    const out = await send(clientFrame(m));
    if (out.length === 0) return undefined;
    assert.equal(out.length, 1);
    const eth = parseEth(out[0])!;
    assert.equal(eth.type, ETH_IPV4);
    assert.equal(formatMac(eth.src), gwMac);
    const ipv4 = parseIpv4(eth.payload)!; // checks the header checksum
    assert.ok(ipv4, "valid IPv4 header");
    assert.equal(formatIp(ipv4.src), "10.0.2.2");
    const udp = parseUdp(ipv4)!; // checks the UDP checksum
    assert.ok(udp, "valid UDP checksum");
    assert.deepEqual([udp.srcPort, udp.dstPort], [67, 68]);
    const r = parseDhcp(udp.payload)!;
    assert.equal(r.op, 2);
    assert.equal(r.xid, m.xid);
    assert.equal(formatMac(r.chaddr), formatMac(m.chaddr));
    return { reply: r, dst: formatIp(ipv4.dst), dstMac: formatMac(eth.dst) };
  };
  return { sw, gw, send, dhcp };
}

const opt = (m: DhcpMessage, code: number) => [...(m.options.get(code) ?? [])];

Deno.test("dhcp: DISCOVER → OFFER, REQUEST → ACK with subnet, router, DNS, lease", async () => {
  const { dhcp, gw } = rig();
  const offer = (await dhcp(clientMsg(DhcpType.DISCOVER)))!;
  assert.equal(offer.dst, "255.255.255.255");
  assert.equal(offer.dstMac, "ff:ff:ff:ff:ff:ff");
  const r = offer.reply;
  assert.deepEqual(opt(r, DhcpOption.MESSAGE_TYPE), [DhcpType.OFFER]);
  const addr = formatIp(r.yiaddr);
  assert.match(addr, /^10\.0\.2\.\d+$/);
  assert.ok(!["10.0.2.0", "10.0.2.2", "10.0.2.3", "10.0.2.255"].includes(addr));
  assert.deepEqual(opt(r, DhcpOption.SERVER_ID), [10, 0, 2, 2]);
  assert.deepEqual(opt(r, DhcpOption.SUBNET_MASK), [255, 255, 255, 0]);
  assert.deepEqual(opt(r, DhcpOption.ROUTER), [10, 0, 2, 2]);
  assert.deepEqual(opt(r, DhcpOption.DNS), [10, 0, 2, 3]);
  assert.deepEqual(opt(r, DhcpOption.LEASE_TIME), [0, 0, 2, 88]);

  const ack = (await dhcp(clientMsg(DhcpType.REQUEST, CLIENT, [
    [DhcpOption.REQUESTED_IP, ipBytes(r.yiaddr)],
    [DhcpOption.SERVER_ID, ipBytes(ip("10.0.2.2"))],
  ])))!;
  assert.deepEqual(opt(ack.reply, DhcpOption.MESSAGE_TYPE), [DhcpType.ACK]);
  assert.equal(formatIp(ack.reply.yiaddr), addr);
  assert.equal(gw.dhcp.addressOf(CLIENT), addr);

  // Renewal: unicast from the bound address, answered by unicast.
  const renew = (await dhcp(clientMsg(DhcpType.REQUEST, CLIENT, [], r.yiaddr)))!;
  assert.deepEqual(opt(renew.reply, DhcpOption.MESSAGE_TYPE), [DhcpType.ACK]);
  assert.equal(renew.dst, addr);
  assert.equal(renew.dstMac, CLIENT);
  assert.equal(gw.stats.dhcpReplies, 3);
});

Deno.test("dhcp: NAK for a taken or foreign address, silence for another server", async () => {
  const { dhcp } = rig();
  const a = (await dhcp(clientMsg(DhcpType.DISCOVER)))!.reply.yiaddr;
  const other = "52:54:00:aa:bb:02";
  const b = (await dhcp(clientMsg(DhcpType.DISCOVER, other)))!.reply.yiaddr;
  assert.notEqual(a, b);
  const nak = (await dhcp(clientMsg(DhcpType.REQUEST, other, [
    [DhcpOption.REQUESTED_IP, ipBytes(a)],
  ])))!;
  assert.deepEqual(opt(nak.reply, DhcpOption.MESSAGE_TYPE), [DhcpType.NAK]);
  assert.equal(nak.reply.yiaddr, 0);
  const foreign = (await dhcp(clientMsg(DhcpType.REQUEST, other, [
    [DhcpOption.REQUESTED_IP, ipBytes(ip("192.168.1.5"))],
  ])))!;
  assert.deepEqual(opt(foreign.reply, DhcpOption.MESSAGE_TYPE), [DhcpType.NAK]);
  const elsewhere = await dhcp(clientMsg(DhcpType.REQUEST, other, [
    [DhcpOption.REQUESTED_IP, ipBytes(b)],
    [DhcpOption.SERVER_ID, ipBytes(ip("10.0.2.99"))],
  ]));
  assert.equal(elsewhere, undefined);
});

Deno.test("dhcp: a MAC keeps its address after RELEASE and across restarts (lease file)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/leases.json`;
    const first = rig(file);
    const a = (await first.dhcp(clientMsg(DhcpType.DISCOVER)))!.reply.yiaddr;
    await first.dhcp(clientMsg(DhcpType.REQUEST, CLIENT, [[DhcpOption.REQUESTED_IP, ipBytes(a)]]));
    assert.equal(await first.dhcp(clientMsg(DhcpType.RELEASE, CLIENT, [], a)), undefined);
    assert.equal((await first.dhcp(clientMsg(DhcpType.DISCOVER)))!.reply.yiaddr, a);
    // Another MAC gets another address.
    const b = (await first.dhcp(clientMsg(DhcpType.DISCOVER, "52:54:00:aa:bb:03")))!.reply.yiaddr;
    assert.notEqual(b, a);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(file)).leases, {
      [CLIENT]: formatIp(a),
      "52:54:00:aa:bb:03": formatIp(b),
    });
    // A new server on the same file offers the same addresses.
    const second = rig(file);
    assert.equal((await second.dhcp(clientMsg(DhcpType.DISCOVER)))!.reply.yiaddr, a);
    // Without the file, the address is still stable (a hash of the MAC picks it).
    assert.equal((await rig().dhcp(clientMsg(DhcpType.DISCOVER)))!.reply.yiaddr, a);
    // A broken lease file is reported and ignored.
    await Deno.writeTextFile(file, "{not json");
    const lines: string[] = [];
    new DhcpServer({
      ...parseCidr("10.0.2.0/24"),
      gateway: 1 + ip("10.0.2.0"),
      leasesFile: file,
      log: (l) => lines.push(l),
    });
    assert.equal(lines.length, 1);
    assert.match(lines[0], /not a lease file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dhcp: a small pool runs out, then offers nothing", () => {
  const server = new DhcpServer({ ...parseCidr("10.9.0.0/30"), gateway: ip("10.9.0.1") });
  // /30: hosts .1 (gateway, also DNS) and .2: one address to give.
  const r1 = server.handle(clientMsg(DhcpType.DISCOVER, "52:54:00:00:00:01"));
  assert.equal(formatIp(r1!.message.yiaddr), "10.9.0.2");
  assert.equal(server.handle(clientMsg(DhcpType.DISCOVER, "52:54:00:00:00:02")), undefined);
  assert.throws(() => parseCidr("10.0.0.0/31"), RangeError);
  assert.throws(() => parseCidr("10.0.0/24"), RangeError);
  assert.throws(
    () => new DhcpServer({ ...parseCidr("10.9.0.0/24"), gateway: ip("10.8.0.1") }),
    RangeError,
  );
});

Deno.test("gateway: answers ARP and ping for its address; ignores garbage", async () => {
  const { send, gw } = rig();
  const me = parseMac(CLIENT);
  const arpReq = buildEth(
    BROADCAST_MAC,
    me,
    ETH_ARP,
    buildArp({
      op: 1,
      senderMac: me,
      senderIp: ip("10.0.2.15"),
      targetMac: new Uint8Array(6),
      targetIp: ip("10.0.2.2"),
    }),
  );
  const [arpReply] = await send(arpReq);
  const arp = parseArp(parseEth(arpReply)!.payload)!;
  assert.equal(arp.op, 2);
  assert.equal(formatMac(arp.senderMac), formatMac(gw.mac));
  assert.equal(formatIp(arp.targetIp), "10.0.2.15");
  // ARP for another address: no answer.
  const other = arpReq.slice();
  other[14 + 27] = 9;
  assert.deepEqual(await send(other), []);

  const icmp = new Uint8Array(16);
  icmp[0] = 8;
  putU16(icmp, 4, 0x4242);
  icmp.fill(0x61, 8);
  putU16(icmp, 2, inetChecksum(icmp, 0, icmp.length));
  const ping = buildEth(
    gw.mac,
    me,
    ETH_IPV4,
    buildIpv4(IP_ICMP, ip("10.0.2.15"), ip("10.0.2.2"), icmp),
  );
  const [pong] = await send(ping);
  const v4 = parseIpv4(parseEth(pong)!.payload)!;
  assert.equal(formatIp(v4.dst), "10.0.2.15");
  assert.equal(v4.payload[0], 0); // echo reply
  assert.deepEqual(v4.payload.subarray(4), icmp.subarray(4));
  assert.equal(inetChecksum(v4.payload, 0, v4.payload.length), 0);

  // A DHCP DISCOVER with a wrong UDP checksum, a truncated DHCP payload, a bad IP header.
  const bad = clientFrame(clientMsg(DhcpType.DISCOVER));
  bad[14 + 20 + 6] ^= 0xff;
  assert.deepEqual(await send(bad), []);
  const short = buildUdpFrame(BROADCAST_MAC, me, 0, 0xffffffff, 68, 67, new Uint8Array(100));
  assert.deepEqual(await send(short), []);
  const badIp = clientFrame(clientMsg(DhcpType.DISCOVER));
  badIp[14 + 8] ^= 1; // TTL changed, header checksum now wrong
  assert.deepEqual(await send(badIp), []);
  assert.equal(gw.stats.ignored, 2);
  assert.equal(gw.stats.dhcpReplies, 0);
});

Deno.test("dhcp: DECLINE retires an address; INFORM gets options without a lease", () => {
  const server = new DhcpServer({ ...parseCidr("10.0.2.0/24"), gateway: ip("10.0.2.2") });
  const a = server.handle(clientMsg(DhcpType.DISCOVER))!.message.yiaddr;
  server.handle(clientMsg(DhcpType.REQUEST, CLIENT, [[DhcpOption.REQUESTED_IP, ipBytes(a)]]));
  // The client found the address in use (ARP conflict): it must never be handed out again.
  assert.equal(
    server.handle(clientMsg(DhcpType.DECLINE, CLIENT, [[DhcpOption.REQUESTED_IP, ipBytes(a)]])),
    undefined,
  );
  const b = server.handle(clientMsg(DhcpType.DISCOVER))!.message.yiaddr;
  assert.notEqual(b, a);
  const nak = server.handle(
    clientMsg(DhcpType.REQUEST, "52:54:00:aa:bb:09", [[DhcpOption.REQUESTED_IP, ipBytes(a)]]),
  )!;
  assert.deepEqual(opt(nak.message, DhcpOption.MESSAGE_TYPE), [DhcpType.NAK]);
  const inform = server.handle(clientMsg(DhcpType.INFORM, CLIENT, [], ip("10.0.2.200")))!;
  assert.deepEqual(opt(inform.message, DhcpOption.MESSAGE_TYPE), [DhcpType.ACK]);
  assert.equal(inform.message.yiaddr, 0);
  assert.equal(inform.message.options.has(DhcpOption.LEASE_TIME), false);
  assert.deepEqual(opt(inform.message, DhcpOption.ROUTER), [10, 0, 2, 2]);
  assert.equal(formatIp(inform.to), "10.0.2.200");
  assert.deepEqual(server.counts, { OFFER: 2, ACK: 2, NAK: 1 });
});
