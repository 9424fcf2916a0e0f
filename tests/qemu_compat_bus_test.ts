/**
 * Differential tests of what the virt board's address space takes on QEMU 7.2 where a strict
 * board would fault: reads and writes of virtio-mmio slots with nothing plugged in (QEMU maps
 * a transport at all eight), and misaligned loads and stores to device registers (QEMU splits
 * them: two aligned loads combined, or byte stores). Both live outside the device models (the
 * machine maps free slots; the hart splits misaligned MMIO accesses); a vmesh half is skipped,
 * with the reason in its name, only if that support is missing, and the QEMU halves keep the
 * programs honest.
 */
import assert from "node:assert/strict";
import { Machine } from "../services/cpu/machine/machine.ts";
import { VirtioRng } from "../services/cpu/virtio/rng.ts";
import { assertSameAsQemu, buildCompatProgram, QEMU_RNG_SLOT0 } from "./qemu_compat_harness.ts";
import { describe, runQemu } from "./riscv/run.ts";

/** True when the machine answers at a free virtio slot (maps an EmptyVirtioMmio there). */
function machineMapsFreeSlots(): boolean {
  const m = new Machine({
    ramSize: 16 << 20,
    bios: new Uint8Array(16), // raw firmware bytes: the machine is only built, never run
    virtio: [{ slot: 0, device: new VirtioRng() }],
  });
  return m.bus.load(0x1000_2000, 4) === 0x74726976;
}

/** vmesh's hart splits misaligned MMIO accesses as QEMU's cputlb does (memory_access.ts). */
const HART_SPLITS_MISALIGNED_MMIO = true;

async function qemuPasses(name: string): Promise<string> {
  const elf = await buildCompatProgram(name);
  const r = await runQemu(elf, "virt", 60_000, [...QEMU_RNG_SLOT0]);
  const what = describe(`qemu ${name}`, r);
  assert.equal(r.code, 0, what);
  assert.ok(r.stdout.endsWith("PASS\n"), what);
  return r.stdout;
}

Deno.test("qemu compat: free virtio slots answer on QEMU (magic, version 2, device id 0)", async () => {
  const out = await qemuPasses("virtio_slots");
  assert.equal(out.match(/^ {2}device_id=0+$/gm)?.length, 7, "seven free slots");
  assert.doesNotMatch(out, /faulted/);
});

const slotsReady = machineMapsFreeSlots();
Deno.test({
  name: "qemu compat: free virtio slots answer on vmesh as on QEMU" + (slotsReady ? "" : (
    " (skipped: the machine does not map EmptyVirtioMmio on free slots yet — " +
    "services/cpu/machine/machine.ts, see services/cpu/devices/README.md)"
  )),
  ignore: !slotsReady,
  fn: async () => {
    await assertSameAsQemu({
      name: "virtio_slots",
      qemuArgs: QEMU_RNG_SLOT0,
      rngSlots: [0],
      minLines: 50,
    });
  },
});

Deno.test("qemu compat: misaligned MMIO loads and stores complete on QEMU", async () => {
  const out = await qemuPasses("misaligned_mmio");
  assert.doesNotMatch(out, /fault/);
  assert.match(out, /^plic lw \+2 across priorities 1\|2=0+30000$/m);
});

Deno.test({
  name: "qemu compat: misaligned MMIO loads and stores on vmesh as on QEMU" +
    (HART_SPLITS_MISALIGNED_MMIO ? "" : (
      " (skipped: the hart raises access faults for misaligned MMIO — services/cpu/hart, " +
      "see services/cpu/devices/README.md)"
    )),
  ignore: !HART_SPLITS_MISALIGNED_MMIO,
  fn: async () => {
    await assertSameAsQemu({
      name: "misaligned_mmio",
      qemuArgs: QEMU_RNG_SLOT0,
      rngSlots: [0],
      minLines: 14,
    });
  },
});
