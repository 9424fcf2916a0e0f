/**
 * A bulk TCP transfer between two vmesh VMs over the net service's switch: both get DHCP
 * leases; VM B listens with busybox `nc -l`, VM A sends 16 MiB of `/dev/urandom` data with
 * busybox `nc`; the SHA-256 both sides print must be equal. A retries until B listens, so
 * nothing depends on which VM boots faster. Builds the guest images on first use.
 */
import assert from "node:assert/strict";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";
import { BootedVm, dhcpCmd, expectedAddresses } from "./net_vm_harness.ts";

const SUBNET = "10.75.0";
const MACS = ["52:54:00:75:00:0a", "52:54:00:75:00:0b"];
/** The address B adds when it has the checksum (outside what DHCP gives them). */
const DONE = `${SUBNET}.250`;

Deno.test("net transfer: 16 MiB with busybox nc between two vmesh VMs, checksums equal", async () => {
  const addrs = expectedAddresses(SUBNET, MACS);
  const [a, b] = MACS.map((m) => addrs.get(m)!);
  assert.notEqual(a, b);
  assert.ok(![a, b].includes(DONE));
  const tb = await startTestBus();
  let svc: ServiceProcess | undefined;
  const vms: BootedVm[] = [];
  try {
    svc = await startService("net", [
      "--switch",
      "xfer",
      "--subnet",
      `${SUBNET}.0/24`,
      "--gateway",
      `${SUBNET}.1`,
    ], tb.nats.url);
    // The guest's nc is busybox's netcat 1.10 port: the receiver ends once stdin (/dev/null)
    // and the connection are at EOF; the sender ends at EOF of its file, maybe before the
    // kernel has sent it all, so A stays up until B announces it is done (address DONE), and
    // B stays up until A is gone, so neither powers off under the other.
    const recv = `${dhcpCmd(MACS[1])} && nc -l -p 5000 </dev/null >/tmp/f && ` +
      `echo "recv $(wc -c </tmp/f) bytes" && sha256sum /tmp/f && ` +
      `ip addr add ${DONE}/24 dev eth0 && { while ping -c 1 -W 2 ${a} >/dev/null; do sleep 1; done; }`;
    // A: retries until B listens (connection refused or no route until then), bounded.
    const send = `${dhcpCmd(MACS[0])} && dd if=/dev/urandom of=/tmp/f bs=1M count=16 && ` +
      `sha256sum /tmp/f && { n=0; until nc ${b} 5000 </tmp/f >/dev/null; do ` +
      `n=$((n+1)); if [ $n -gt 300 ]; then exit 9; fi; sleep 1; done; } && echo sent && ` +
      `{ n=0; until ping -c 1 -W 1 ${DONE} >/dev/null; do n=$((n+1)); ` +
      `if [ $n -gt 900 ]; then exit 9; fi; done; }`;
    vms.push(new BootedVm("xfera", tb.nats.url, send, ["xfer"]));
    vms.push(new BootedVm("xferb", tb.nats.url, recv, ["xfer"]));
    const [ra, rb] = await Promise.all(vms.map((v) => v.done));
    assert.equal(ra.code, 0, `${ra.stdout}\n${ra.stderr}`);
    assert.equal(rb.code, 0, `${rb.stdout}\n${rb.stderr}`);
    assert.match(ra.stdout, new RegExp(`lease of ${a.replaceAll(".", "\\.")} obtained`));
    assert.match(rb.stdout, new RegExp(`lease of ${b.replaceAll(".", "\\.")} obtained`));
    assert.match(rb.stdout, /recv 16777216 bytes/, rb.stdout);
    const sum = (s: string) => /^([0-9a-f]{64}) {2}\/tmp\/f$/m.exec(s)?.[1];
    const sent = sum(ra.stdout);
    assert.ok(sent, ra.stdout);
    assert.equal(sum(rb.stdout), sent, `${ra.stdout}\n---\n${rb.stdout}`);
    // Random data: not the SHA-256 of 16 MiB of zeros.
    assert.notEqual(sent, "080acf35a507ac9849cfcba47dc2ad83e01b75663a516279c8b9d243b719643e");
    assert.equal(await svc.stop("SIGTERM"), 0);
  } finally {
    await Promise.all(vms.map((v) => v.stop("SIGTERM")));
    await svc?.stop("SIGKILL");
    await tb.close();
  }
});
