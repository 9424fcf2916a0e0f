/**
 * Real Linux guests on a vmesh switch: two guests (the repository's guest images under
 * QEMU's virt board, whose virtio-net is reached through the switch's UDP uplinks, the
 * wire format of QEMU's `-netdev socket,udp=`) get DHCP leases from the switch and ping
 * each other and the gateway. It checks the switch, DHCP and gateway against a real Linux
 * network stack and busybox udhcpc, independent of vmesh's own CPU. Builds the guest
 * images on first use (several minutes); with a warm cache it only boots QEMU.
 */
import assert from "node:assert/strict";
import dgram from "node:dgram";
import { ensureGuestImages, runQemuBatch } from "../guest/mod.ts";
import { expectedAddresses } from "./net_vm_harness.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

/** A free loopback UDP port (bound, read, released). */
async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const SUBNET = "10.78.0";
const MACS = ["52:54:00:78:00:0a", "52:54:00:78:00:0b"];
/** The address guest 1 adds when its pings are done (outside what DHCP gave them). */
const DONE = `${SUBNET}.200`;

Deno.test("net guests: two Linux guests get DHCP leases on a switch and ping each other", async () => {
  const img = await ensureGuestImages();
  const addrs = expectedAddresses(SUBNET, MACS);
  assert.ok(![...addrs.values()].includes(DONE));
  // Whichever guest asks first, each gets the same address (no hash collision between them).
  assert.deepEqual(expectedAddresses(SUBNET, [...MACS].reverse()), addrs);
  const tb = await startTestBus();
  let svc: ServiceProcess | undefined;
  try {
    const ports = await Promise.all([1, 2, 3, 4].map(() => freeUdpPort()));
    // Per guest: the switch listens on ours[i] (QEMU's udp=), QEMU on theirs[i] (localaddr=).
    const ours = [ports[0], ports[1]];
    const theirs = [ports[2], ports[3]];
    svc = await startService("net", [
      "--switch",
      "g0",
      "--subnet",
      `${SUBNET}.0/24`,
      "--gateway",
      `${SUBNET}.1`,
      ...ours.flatMap((p, i) => ["--uplink", `udp:${p}:127.0.0.1:${theirs[i]}@g0`]),
    ], tb.nats.url);
    assert.equal(svc.log.filter((l) => l.includes("uplink udp")).length, 2, svc.log.join("\n"));
    const runs = MACS.map((mac, i) => {
      const peer = addrs.get(MACS[1 - i])!;
      // Pings must not race the peer's power-off: guest 1, when done, adds a "done" address;
      // guest 0, when done, waits for that address, then powers off; guest 1 waits for that.
      const up = (a: string) =>
        `{ n=0; until ping -c 1 -W 1 ${a} >/dev/null; do n=$((n+1)); if [ $n -gt 120 ]; then exit 9; fi; done; }`;
      const end = i === 0
        ? up(DONE)
        : `ip addr add ${DONE}/24 dev eth0 && { while ping -c 1 -W 2 ${peer} >/dev/null; do sleep 1; done; }`;
      const cmd = `udhcpc -i eth0 -q -n -t 20 -T 2 && ip -4 addr show eth0 && ` +
        `ping -c 3 -W 2 ${SUBNET}.1 && ${up(peer)} && ping -c 3 -W 2 ${peer} && ${end}`;
      return runQemuBatch(img, cmd, {
        disk: false,
        net: false,
        timeoutMs: 240_000,
        extra: [
          "-netdev",
          `socket,id=n0,udp=127.0.0.1:${ours[i]},localaddr=127.0.0.1:${theirs[i]}`,
          "-device",
          `virtio-net-device,netdev=n0,mac=${mac}`,
        ],
      });
    });
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      const mine = addrs.get(MACS[i])!;
      const peer = addrs.get(MACS[1 - i])!;
      assert.equal(r.status, 0, r.console);
      const out = r.output ?? "";
      assert.match(out, new RegExp(`lease of ${mine.replaceAll(".", "\\.")} obtained`), r.console);
      assert.match(out, new RegExp(`inet ${mine.replaceAll(".", "\\.")}/24`));
      assert.match(
        out,
        new RegExp(`PING ${peer.replaceAll(".", "\\.")}[\\s\\S]*3 packets received`),
      );
    });
    assert.equal(await svc.stop("SIGTERM"), 0);
  } finally {
    await svc?.stop("SIGKILL");
    await tb.close();
  }
});
