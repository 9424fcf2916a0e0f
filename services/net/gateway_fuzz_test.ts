import assert from "node:assert/strict";
import { buildDhcp, DhcpOption, DhcpType, parseCidr } from "./dhcp.ts";
import { Gateway } from "./gateway.ts";
import { parseMac } from "./mac.ts";
import { BROADCAST_MAC, buildUdpFrame, parseIp } from "./packet.ts";
import { VirtualSwitch } from "./switch.ts";

/** xorshift32: the same "random" bytes on every run. */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

Deno.test("gateway: mutated and random frames never throw; the switch keeps answering", async () => {
  const sw = new VirtualSwitch("fz");
  const gw = new Gateway(sw, { ...parseCidr("10.5.0.0/24"), gateway: parseIp("10.5.0.1")! });
  const got: Uint8Array[] = [];
  sw.join("vm", "52:54:00:00:00:01", (f) => (got.push(f), true));
  const mac = parseMac("52:54:00:00:00:01");
  const discover = buildUdpFrame(
    BROADCAST_MAC,
    mac,
    0,
    0xffffffff,
    68,
    67,
    buildDhcp({
      op: 1,
      xid: 7,
      flags: 0,
      ciaddr: 0,
      yiaddr: 0,
      siaddr: 0,
      giaddr: 0,
      chaddr: mac,
      options: new Map([[DhcpOption.MESSAGE_TYPE, new Uint8Array([DhcpType.DISCOVER])]]),
    }),
  );
  const rand = rng(0x5eed);
  for (let i = 0; i < 20_000; i++) {
    let f: Uint8Array;
    if (i % 2 === 0) {
      // A valid DISCOVER with a few bytes past the Ethernet header changed or the end cut.
      f = discover.slice(0, 14 + Math.floor(rand() * (discover.length - 14)) + 1);
      for (let k = 0; k < 3; k++) f[14 + Math.floor(rand() * (f.length - 14))] = rand() * 256;
    } else {
      f = new Uint8Array(Math.floor(rand() * 400));
      for (let k = 0; k < f.length; k++) f[k] = rand() * 256;
      if (f.length >= 14) f.set([0x08, rand() < 0.5 ? 0x00 : 0x06], 12);
    }
    sw.input("vm", f);
  }
  await Promise.resolve();
  // A throwing responder would show up here (the switch contains sink exceptions).
  assert.equal(sw.drops.sink_error, 0);
  // Still a working DHCP server afterwards.
  got.length = 0;
  sw.input("vm", discover);
  await Promise.resolve();
  assert.equal(got.length, 1);
  assert.ok(gw.stats.dhcpReplies >= 1);
});
