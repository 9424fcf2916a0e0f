import assert from "node:assert/strict";
import { parseNetArgs } from "./config.ts";
import { formatIp } from "./packet.ts";

Deno.test("config: defaults before --switch apply to all; settings after apply to one", () => {
  const c = parseNetArgs([
    "--aging",
    "60",
    "--switch",
    "sw0",
    "--subnet",
    "10.0.2.0/24",
    "--gateway",
    "10.0.2.2",
    "--lease",
    "600",
    "--switch",
    "lab",
    "--mode",
    "hub",
    "--uplink",
    "tap:vmtap0@sw0",
  ]);
  assert.deepEqual(c.switches.map((s) => [s.name, s.mode, s.agingMs]), [
    ["sw0", "learn", 60_000],
    ["lab", "hub", 60_000],
  ]);
  const d = c.switches[0].dhcp!;
  assert.equal(formatIp(d.network), "10.0.2.0");
  assert.equal(d.prefix, 24);
  assert.equal(formatIp(d.gateway), "10.0.2.2");
  assert.equal(d.leaseSecs, 600);
  assert.equal(c.switches[1].dhcp, undefined);
  assert.deepEqual(c.uplinks, [{ kind: "tap", name: "vmtap0", switch: "sw0" }]);
  assert.deepEqual(parseNetArgs(["--uplink", "udp:4000:127.0.0.1:4001@sw0"]).uplinks, [
    {
      kind: "udp",
      localHost: "127.0.0.1",
      localPort: 4000,
      remoteHost: "127.0.0.1",
      remotePort: 4001,
      switch: "sw0",
    },
  ]);
  // No --switch: one switch sw0; the gateway defaults to the first host.
  const one = parseNetArgs(["--subnet", "192.168.7.0/24"]);
  assert.equal(one.switches[0].name, "sw0");
  assert.equal(formatIp(one.switches[0].dhcp!.gateway), "192.168.7.1");
});

Deno.test("config: bad flags are one-line errors", () => {
  const bad: [string[], RegExp][] = [
    [["--mode", "bridge"], /--mode must be/],
    [["--mtu", "20"], /--mtu must be 68..65535/],
    [["--subnet", "10.0.0.0/33"], /is not a.b.c.d/],
    [["--subnet", "10.0.0.0/24", "--gateway", "10.1.0.1"], /outside/],
    [["--gateway", "10.0.0.1"], /needs --subnet/],
    [["--uplink", "tap:x@nowhere"], /no switch nowhere/],
    [["--uplink", "eth0@sw0"], /is not tap:IFNAME@SWITCH/],
    [["--uplink", "udp:70000:127.0.0.1:5@sw0"], /--uplink must be 1..65535/],
    [["--uplink", "udp:5:localhost:6@sw0"], /or udp:\[LHOST:\]LPORT/],
    [["--uplink", "udp:5:300.0.0.1:6@sw0"], /not an IPv4 address/],
    [["--switch", "a.b"], /not a subject token/],
    [["--switch", "a", "--switch", "a"], /given twice/],
    [["--bogus"], /Unknown option/],
    [["--http", "99999"], /--http/],
  ];
  for (const [args, re] of bad) assert.throws(() => parseNetArgs(args), re, args.join(" "));
});
