/**
 * The CPU service's VM control contract on a real nats-server: status (state, pc, instret,
 * devices), pause (the hart stops retiring instructions), resume, and stop (the run ends
 * with 0), with a disk served by the real disk service process.
 */
import assert from "node:assert/strict";
import { connect, vm as vmContract } from "@vmesh/bus";
import { VmService } from "../services/cpu/vm_service.ts";
import { buildBareMetalElf } from "./bare_metal_elf.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

function spinElf(dir: string): Promise<string> {
  return buildBareMetalElf(dir, "spin", ".globl _start\n_start:\n  addi a0, a0, 1\n  j _start\n");
}

Deno.test("vm control: status, pause, resume, stop", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-vmctl-test-" });
  const tb = await startTestBus();
  const cpuBus = await connect({ url: tb.nats.url, name: "test-cpu", log: () => {} });
  let disk: ServiceProcess | undefined;
  try {
    const elf = await spinElf(dir);
    await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(1 << 20));
    disk = await startService(
      "disk",
      ["--vm", "vmC", "--device", "disk0", "--image", `${dir}/disk.img`],
      tb.nats.url,
    );
    const vm = await VmService.create(cpuBus, {
      vm: "vmC",
      machine: { ramSize: 64 << 20, bios: null, kernel: elf },
      disks: [{ device: "disk0" }],
    });
    assert.equal(vm.machine.virtio.length, 2, "virtio-blk and virtio-rng");
    await vm.serve();
    const running = vm.run();
    const ctl = tb.bus.client({ vm: "vmC", device: "ctl" }, vmContract.ops, { timeoutMs: 5000 });

    let s = await ctl.call("status", {});
    assert.equal(s.state, vmContract.State.RUNNING);
    assert.deepEqual(
      s.devices.map((d) => [d.device, d.kind, d.connected]),
      [["disk0", "virtio-blk", true], ["rng0", "virtio-rng", true], [
        "console",
        "uart16550",
        true,
      ]],
    );
    assert.equal(s.devices[0].subject, "vmesh.vmC.disk0");
    while (s.instret === 0n) s = await ctl.call("status", {});
    assert.ok(s.pc >= 0x8000_0000n && s.pc < 0x8000_0010n, `pc ${s.pc}`);

    s = await ctl.call("pause", {});
    assert.equal(s.state, vmContract.State.PAUSED);
    const held = (await ctl.call("status", {})).instret;
    assert.equal((await ctl.call("status", {})).instret, held, "a paused hart retires nothing");

    s = await ctl.call("resume", {});
    assert.equal(s.state, vmContract.State.RUNNING);
    while (s.instret === held) s = await ctl.call("status", {});
    assert.ok(s.instret > held);

    await ctl.call("stop", {});
    assert.equal(await running, 0);
    assert.equal(vm.machine.stopCause, "stopped");
    assert.equal((await ctl.call("status", {})).state, vmContract.State.STOPPED);
    await vm.close();
  } finally {
    await disk?.stop();
    await cpuBus.close();
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vm control: a created VM runs only after start (--wait-start's cue); a stop instead ends it at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-vmctl-test-" });
  const tb = await startTestBus();
  const cpuBus = await connect({ url: tb.nats.url, name: "test-cpu", log: () => {} });
  try {
    const elf = await spinElf(dir);
    const ctl = tb.bus.client({ vm: "vmW", device: "ctl" }, vmContract.ops, { timeoutMs: 5000 });
    const created = () =>
      VmService.create(cpuBus, {
        vm: "vmW",
        machine: { ramSize: 64 << 20, bios: null, kernel: elf },
        rng: false,
      });
    const within = async (p: Promise<void>, what: string) => {
      let t: ReturnType<typeof setTimeout> | undefined;
      try {
        await Promise.race([
          p,
          new Promise<never>((_, no) =>
            t = setTimeout(() => no(new Error(`no cue after ${what}`)), 5000)
          ),
        ]);
      } finally {
        clearTimeout(t);
      }
    };
    const released = (vm: VmService) => {
      let seen = false;
      vm.startRequested.then(() => seen = true);
      return () => seen;
    };

    // Start: the cue comes, status is still CREATED until run() is called.
    let vm = await created();
    await vm.serve();
    let cue = released(vm);
    let s = await ctl.call("status", {});
    assert.equal(s.state, vmContract.State.CREATED);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(cue(), false, "no cue without a request");
    s = await ctl.call("start", {});
    assert.equal(s.state, vmContract.State.CREATED);
    await within(vm.startRequested, "start");
    assert.equal(cue(), true);
    const running = vm.run();
    while (s.instret === 0n) s = await ctl.call("status", {});
    assert.equal(s.state, vmContract.State.RUNNING);
    await ctl.call("stop", {});
    assert.equal(await running, 0);
    await vm.close();

    // Stop before start: the cue comes too, and run() returns without running the guest.
    vm = await created();
    await vm.serve();
    cue = released(vm);
    await ctl.call("stop", {});
    await within(vm.startRequested, "stop");
    assert.equal(await vm.run(), 0);
    assert.equal(vm.machine.instret, 0);
    assert.equal(vm.machine.stopCause, "stopped");
    await vm.close();
  } finally {
    await cpuBus.close();
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
