/**
 * Addressing of a `./vmesh boot --nic` guest on a switch that boot starts itself: DHCP from
 * the switch (10.0.2.0/24, gateway 10.0.2.2, as QEMU's user network) and static addressing
 * through the kernel's `ip=` argument. Real services, real guest.
 */
import assert from "node:assert/strict";
import { ensureGuestImages } from "../guest/mod.ts";
import { DEFAULT_GATEWAY } from "../cli/boot.ts";
import { bootBatch as boot } from "./vmesh_boot.ts";

Deno.test("net boot: a guest on a switch boot starts gets a DHCP lease and pings the gateway", async () => {
  await ensureGuestImages();
  const r = await boot(
    ["--name", `dhcp${Deno.pid}`, "--nic", `switch=dhcp${Deno.pid}`],
    `udhcpc -i eth0 -q -n -t 10 -T 2 && ip -4 addr show eth0 && ping -c 2 -W 2 ${DEFAULT_GATEWAY}`,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /inet 10\.0\.2\.\d+\/24/);
  assert.match(r.stdout, /2 packets transmitted, 2 packets received/);
});

Deno.test("net boot: the kernel's ip= argument configures eth0 statically", async () => {
  await ensureGuestImages();
  const r = await boot(
    [
      "--name",
      `static${Deno.pid}`,
      "--nic",
      `switch=static${Deno.pid}`,
      "--append",
      `console=ttyS0 ip=10.0.2.77::${DEFAULT_GATEWAY}:255.255.255.0::eth0:off`,
    ],
    `ip -4 addr show eth0 && ping -c 2 -W 2 ${DEFAULT_GATEWAY}`,
  );
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /inet 10\.0\.2\.77\/24/);
  assert.match(r.stdout, /2 packets transmitted, 2 packets received/);
});
