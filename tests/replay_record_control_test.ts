/**
 * A VM being recorded (`--record`) refuses what its log cannot hold: pause, snapshot and
 * migrate over the real control contract fail with a message that says why and what to do,
 * the VM runs on, and a stop ends the recording, which then replays clean.
 */
import assert from "node:assert/strict";
import { connect, vm as vmContract } from "@vmesh/bus";
import { VmService } from "../services/cpu/vm_service.ts";
import { DeviceRecorder, DeviceReplayer } from "../services/cpu/replay/device_log.ts";
import { imagesDigest, RunRecorder, RunReplayer } from "../services/cpu/replay/run_log.ts";
import { Machine } from "../services/cpu/machine/machine.ts";
import { buildBareMetalElf } from "./bare_metal_elf.ts";
import { startTestBus } from "./services_harness.ts";

Deno.test("a recording VM refuses pause, snapshot and migrate, and its log replays", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-rec-ctl-" });
  const tb = await startTestBus();
  const cpuBus = await connect({ url: tb.nats.url, name: "test-cpu", log: () => {} });
  try {
    const elfPath = await buildBareMetalElf(
      dir,
      "spin",
      ".globl _start\n_start:\n  addi a0, a0, 1\n  j _start\n",
    );
    const elf = await Deno.readFile(elfPath);
    const header = {
      vmesh: "run-log" as const,
      version: 2 as const,
      images: await imagesDigest([elf]),
      ramSize: 64 << 20,
      harts: 1,
      rtcEpochNs: 1_700_000_000_000_000_000,
      checkpointEvery: 1_000_000,
      devices: { disks: [], nics: [], rng: false, seed: 7 },
    };
    const log = `${dir}/rec.log`;
    const rec = new DeviceRecorder(await RunRecorder.create(log, header));
    const vm = await VmService.create(cpuBus, {
      vm: "vmR",
      machine: {
        ramSize: 64 << 20,
        bios: null,
        kernel: elf,
        clock: "instructions",
        engine: "interp",
        journal: rec,
        rtcEpochNs: header.rtcEpochNs,
      },
      io: rec,
      rng: false,
    });
    await vm.serve();
    const running = vm.run();
    const ctl = tb.bus.client({ vm: "vmR", device: "ctl" }, vmContract.ops, { timeoutMs: 5000 });
    let s = await ctl.call("status", {});
    while (s.instret < 3_000_000n) s = await ctl.call("status", {});
    const refused = async (op: Promise<unknown>, what: string) => {
      await assert.rejects(op, (e: Error) => {
        assert.match(e.message, /VM vmR is being recorded \(--record\)/, what);
        assert.match(e.message, new RegExp(`a ${what} would not replay; stop it to end`));
        return true;
      });
    };
    await refused(ctl.call("pause", {}), "pause");
    await refused(ctl.call("snapshot", { name: "s1", diskDir: dir }), "snapshot");
    await refused(ctl.call("migrate", { to: "elsewhere" }), "migration");
    s = await ctl.call("status", {});
    assert.equal(s.state, vmContract.State.RUNNING, "still running");
    const before = s.instret;
    while (s.instret === before) s = await ctl.call("status", {});

    await ctl.call("stop", {});
    assert.equal(await running, 0);
    await vm.close();
    assert.ok(rec.checkpoints >= 3, `${rec.checkpoints} checkpoints`);

    // The recording replays without the bus: every checkpoint matches.
    const replayer = await RunReplayer.open(log, { ...header, append: undefined });
    const m = new Machine({
      ramSize: 64 << 20,
      kernel: elf,
      clock: "instructions",
      engine: "interp",
      journal: new DeviceReplayer(replayer),
      rtcEpochNs: header.rtcEpochNs,
    });
    await m.run();
    assert.equal(replayer.divergence, undefined);
    assert.equal(replayer.checkpoints, rec.checkpoints);
  } finally {
    await cpuBus.close();
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
