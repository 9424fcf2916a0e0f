import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { Plic } from "../devices/plic.ts";
import { HartIrqLines } from "../machine/hart_irq.ts";
import { deviceTreeBlob } from "../machine/device_tree.ts";
import { PLIC } from "../machine/memory_map.ts";
import { MmioBus } from "../machine/physical_bus.ts";
import { EmptyVirtioMmio, freeVirtioSlots, mountVirtio } from "./slot.ts";
import { VirtioRng } from "./rng.ts";
import { TestDriver } from "./test_driver.ts";

Deno.test("virtio slot: mapped at 0x10001000 + n*0x1000, interrupts on PLIC source n+1", () => {
  const mem = new GuestMemory(1 << 20);
  const plic = new Plic(1, 96, new HartIrqLines(mem));
  const levels: boolean[] = [];
  const { region, transport } = mountVirtio(
    mem,
    { slot: 2, device: new VirtioRng({ entropy: (d) => d.fill(7) }) },
    plic,
    (l) => levels.push(l),
  );
  assert.equal(region.base, 0x10003000);
  assert.equal(region.irq, 3);
  assert.equal(transport.name, "virtio_mmio@10003000");
  const bus = new MmioBus();
  bus.map(region.base, region.size, transport);
  assert.equal(bus.load(0x10003000, 4), 0x74726976, "magic through the bus");
  assert.equal(bus.load(0x10003008, 4), 4, "device id through the bus");

  const d = new TestDriver(mem, transport);
  d.init();
  d.submit(0, [{ addr: d.alloc(8), len: 8, write: true }]);
  // PLIC pending word 0 at offset 0x1000 has bit 3 set while the line is high.
  assert.equal(plic.read(0x1000, 4) & (1 << 3), 1 << 3);
  d.ack();
  assert.deepEqual(levels, [true, false]);
  // The PLIC gateway latches the request: still pending after the line drops, until claimed.
  assert.equal(plic.read(0x1000, 4) & (1 << 3), 1 << 3);
  plic.write(3 * 4, 4, 1); // priority of source 3
  plic.write(0x2000, 4, 1 << 3); // enable source 3 for context 0
  assert.equal(plic.read(0x200004, 4), 3, "claim returns the virtio source");
  assert.equal(plic.read(0x1000, 4) & (1 << 3), 0);

  // The device tree gets a virtio_mmio@10003000 node.
  const dtb = deviceTreeBlob({ harts: 1, ramSize: 1 << 20, regions: [PLIC, region] });
  assert.ok(new TextDecoder("latin1").decode(dtb).includes("virtio_mmio@10003000"));
  assert.throws(() => mountVirtio(mem, { slot: 8, device: new VirtioRng() }, plic), RangeError);
});

Deno.test("virtio slot: a free slot answers as QEMU's empty transport (magic, version, id 0)", () => {
  const bus = new MmioBus();
  const free = freeVirtioSlots([0, 3]);
  assert.deepEqual(free.map((r) => r.base), [
    0x10002000,
    0x10003000,
    0x10005000,
    0x10006000,
    0x10007000,
    0x10008000,
  ]);
  for (const r of free) bus.map(r.base, r.size, new EmptyVirtioMmio(`virtio_mmio@${r.base}`));
  assert.equal(bus.load(0x10002000, 4), 0x74726976, "MagicValue");
  assert.equal(bus.load(0x10002004, 4), 2, "Version");
  assert.equal(bus.load(0x10002008, 4), 0, "DeviceID 0: nothing plugged in");
  assert.equal(bus.load(0x1000200c, 4), 0x554d4551, "VendorID");
  assert.equal(bus.load(0x10002070, 4), 0, "Status");
  assert.equal(bus.load(0x10002100, 4), 0, "config space");
  assert.equal(bus.store(0x10002070, 4, 0xff), true, "writes are taken and ignored");
  assert.equal(bus.load(0x10002070, 4), 0);
  assert.equal(bus.load(0x10008000, 1), 0, "narrow reads answer 0");
});

Deno.test("virtio slot: a free legacy slot reads Version 1, and a legacy device mounts", () => {
  assert.equal(new EmptyVirtioMmio("v", 1).read(4, 4), 1);
  const mem = new GuestMemory(1 << 20);
  const plic = new Plic(1, 96, new HartIrqLines(mem));
  const { transport } = mountVirtio(mem, { slot: 1, device: new VirtioRng(), legacy: true }, plic);
  assert.equal(transport.legacy, true);
  assert.equal(transport.read(4, 4), 1);
});
