/**
 * Load: 8 Linux VMs booted at once on this host, sharing one nats-server, one disk service
 * process (a copy-on-write overlay per VM over one base) and one switch: every guest reaches
 * its prompt, each reads back only its own disk's token, and each gets its own DHCP address
 * (tests/load_vms.ts). Times and memory are the bench's (tests/load_bench.ts), not asserted.
 */
import assert from "node:assert/strict";
import { bootMany } from "./load_vms.ts";

const VMS = 8;

Deno.test("load: 8 VMs at once on one disk service and one switch reach the prompt, no cross-talk", async () => {
  const r = await bootMany(VMS);
  assert.equal(r.promptMs.length, VMS);
  assert.ok(r.promptMs.every((t) => t > 0), "every guest reached its prompt");
  assert.deepEqual(r.crossTalk, []);
  assert.equal(new Set(r.addresses).size, VMS, `distinct addresses: ${r.addresses.join(", ")}`);
  console.log(
    `all ${VMS} prompts after ${(r.allPromptsMs / 1000).toFixed(1)} s; CPU service RSS ` +
      `${Math.min(...r.cpuRssKiB) >> 10}-${Math.max(...r.cpuRssKiB) >> 10} MiB; shared: disk ` +
      `${r.sharedRssKiB.disk >> 10} MiB, switch ${r.sharedRssKiB.net >> 10} MiB, nats ` +
      `${r.sharedRssKiB.nats >> 10} MiB; load ${r.load.before} -> ${r.load.atPrompts} on ` +
      `${r.load.cpus} CPUs`,
  );
});
