/**
 * The CPU service with a thread per hart (`--smp-threads`): two harts run in their Workers
 * under a real nats-server, ctl pause, snapshot and migrate are refused with what to do (a
 * pause does not reach the Workers yet), the VM runs on, and a stop ends it with both harts'
 * records back in the machine.
 */
import assert from "node:assert/strict";
import { connect, vm as vmContract } from "@vmesh/bus";
import { VmService } from "../services/cpu/vm_service.ts";
import { HartLayout } from "../services/cpu/guest_memory.ts";
import { buildBareMetalElf } from "./bare_metal_elf.ts";
import { startTestBus } from "./services_harness.ts";

Deno.test("CPU service --smp-threads: harts run in Workers; pause, snapshot, migrate refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-smp-svc-" });
  const tb = await startTestBus();
  const cpuBus = await connect({ url: tb.nats.url, name: "test-cpu", log: () => {} });
  try {
    // Every hart starts here (a0 = its id) and counts in a0 for ever.
    const elf = await Deno.readFile(
      await buildBareMetalElf(
        dir,
        "spin",
        ".globl _start\n_start:\n  addi a0, a0, 1\n  j _start\n",
      ),
    );
    const vm = await VmService.create(cpuBus, {
      vm: "vmT",
      machine: { ramSize: 64 << 20, harts: 2, bios: null, kernel: elf, threads: true },
      rng: false,
    });
    await vm.serve();
    const running = vm.run();
    const ctl = tb.bus.client({ vm: "vmT", device: "ctl" }, vmContract.ops, { timeoutMs: 5000 });
    const refused = async (op: Promise<unknown>, what: string) => {
      await assert.rejects(op, (e: Error) => {
        assert.match(e.message, /VM vmT runs a thread per hart \(--smp-threads\)/, what);
        assert.match(e.message, new RegExp(`${what} a VM started without --smp-threads`));
        return true;
      });
    };
    await refused(ctl.call("pause", {}), "pause");
    await refused(ctl.call("snapshot", { name: "s1", diskDir: dir }), "snapshot");
    await refused(ctl.call("migrate", { to: "elsewhere" }), "migration");
    assert.equal((await ctl.call("status", {})).state, vmContract.State.RUNNING, "still running");
    // Until both Workers ran a while (their records in the shared memory count on).
    const mem = vm.machine.mem;
    const retired = (h: number) => mem.i32[(mem.hartBase(h) + HartLayout.INSTRET) >> 2] >>> 0;
    const deadline = performance.now() + 60_000;
    while (retired(0) < 1e6 || retired(1) < 1e6) {
      assert.ok(performance.now() < deadline, `retired ${retired(0)} and ${retired(1)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await ctl.call("stop", {});
    assert.equal(await running, 0);
    await vm.close();
    const stats = vm.machine.threadStats ?? [];
    assert.equal(stats.length, 2, "a Worker per hart");
    for (const t of stats) {
      assert.equal(t.error, undefined);
      assert.ok(t.instret > 1e6, `hart ${t.hartId} ran ${t.instret} instructions`);
    }
    // The records came back into the machine's harts.
    for (const h of vm.machine.harts) assert.ok(h.instret > 1e6, `hart instret ${h.instret}`);
  } finally {
    await cpuBus.close();
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
