/**
 * VM ↔ VM through the net service: two vmesh VMs (`vmesh boot`, vmesh's own CPU booting the
 * repository's Linux guest) with a virtio-net port on the same switch get DHCP leases from
 * the switch and ping the gateway and each other. Builds the guest images on first use.
 */
import assert from "node:assert/strict";
import { expectedAddresses } from "./net_vm_harness.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";
import { bootBatch } from "./vmesh_boot.ts";

const SUBNET = "10.79.0";
// Set inside the guests: both CPU services give a VM's first NIC the same default MAC.
const MACS = ["52:54:00:79:00:0a", "52:54:00:79:00:0b"];
/** The address VM 1 adds when its pings are done (outside what DHCP gives them). */
const DONE = `${SUBNET}.200`;

/** `vmesh boot` of VM `name` on switch vnet running `cmd`; resolves with code and output. */
function boot(name: string, natsUrl: string, cmd: string) {
  return bootBatch(["--name", name, "--nic", "switch=vnet", "--timeout", "300"], cmd, {
    NATS_URL: natsUrl,
  });
}

Deno.test("net vms: two vmesh VMs on a switch get DHCP leases and ping each other", async () => {
  const addrs = expectedAddresses(SUBNET, MACS);
  // Whichever VM asks first, each gets the same address (no hash collision between them).
  assert.deepEqual(expectedAddresses(SUBNET, [...MACS].reverse()), addrs);
  assert.ok(![...addrs.values()].includes(DONE));
  const tb = await startTestBus();
  let svc: ServiceProcess | undefined;
  try {
    svc = await startService("net", [
      "--switch",
      "vnet",
      "--subnet",
      `${SUBNET}.0/24`,
      "--gateway",
      `${SUBNET}.1`,
    ], tb.nats.url);
    const runs = MACS.map((mac, i) => {
      const peer = addrs.get(MACS[1 - i])!;
      // Pings must not race the peer's power-off: VM 1, when done, adds a "done" address;
      // VM 0, when done, waits for that address, then powers off; VM 1 waits for that.
      const up = (a: string) =>
        `{ n=0; until ping -c 1 -W 1 ${a} >/dev/null; do n=$((n+1)); if [ $n -gt 200 ]; then exit 9; fi; done; }`;
      const end = i === 0
        ? up(DONE)
        : `ip addr add ${DONE}/24 dev eth0 && { while ping -c 1 -W 2 ${peer} >/dev/null; do sleep 1; done; }`;
      const cmd = `ip link set eth0 address ${mac} && udhcpc -i eth0 -q -n -t 20 -T 2 && ` +
        `ip -4 addr show eth0 && ping -c 3 -W 2 ${SUBNET}.1 && ${up(peer)} && ` +
        `ping -c 3 -W 2 ${peer} && ${end}`;
      return boot(`netvm${i}`, tb.nats.url, cmd);
    });
    const results = await Promise.all(runs);
    results.forEach((r, i) => {
      const mine = addrs.get(MACS[i])!.replaceAll(".", "\\.");
      const peer = addrs.get(MACS[1 - i])!.replaceAll(".", "\\.");
      const all = `${r.stdout}\n${r.stderr}`;
      assert.equal(r.code, 0, all);
      assert.match(r.stdout, new RegExp(`lease of ${mine} obtained`), all);
      assert.match(r.stdout, new RegExp(`inet ${mine}/24`), all);
      assert.match(r.stdout, new RegExp(`PING ${peer}[\\s\\S]*3 packets received`), all);
    });
    assert.equal(await svc.stop("SIGTERM"), 0);
  } finally {
    await svc?.stop("SIGKILL");
    await tb.close();
  }
});
