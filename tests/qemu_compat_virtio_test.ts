/**
 * Differential tests of virtio-mmio leniency against qemu-system-riscv64 7.2: bare-metal
 * virtio-rng and virtio-blk drivers that negotiate only the low 32 feature bits (no
 * VIRTIO_F_VERSION_1, as xv6 does) must keep FEATURES_OK and get entropy / read and write
 * sectors, on QEMU and on vmesh, with identical output (and identical disks afterwards); a
 * virtio-net driver without VERSION_1 gets the legacy 10-byte header; and a driver of the legacy
 * (Version 1) transport, which QEMU `virt` has by default.
 */
import assert from "node:assert/strict";
import {
  assertSameAsQemu,
  QEMU_LEGACY_RNG_SLOT0,
  QEMU_NET_SLOT0,
  QEMU_RNG_SLOT0,
  qemuBlkSlot0,
} from "./qemu_compat_harness.ts";

Deno.test("qemu compat: virtio-rng driver without VERSION_1 on the modern transport", async () => {
  const out = await assertSameAsQemu({
    name: "virtio_legacy_rng",
    qemuArgs: QEMU_RNG_SLOT0,
    rngSlots: [0],
    minLines: 30,
  });
  // What the program establishes, spelled out (the byte-for-byte comparison covers the rest).
  assert.match(out, /^status after FEATURES_OK without VERSION_1=0+b$/m);
  assert.match(out, /^used len=0+10$/m);
  assert.match(out, /^status without FEATURES_OK=0+7$/m);
  assert.match(out, /^7 requests on a 5-entry ring, bytes=0+70$/m);
});

Deno.test("qemu compat: xv6-style virtio-blk driver without VERSION_1 reads and writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-compat-blk-" });
  try {
    // 1 MiB raw disk; each sector starts with "sector N".
    const img = new Uint8Array(1 << 20);
    for (let s = 0; s < 2048; s++) img.set(new TextEncoder().encode(`sector ${s}`), s * 512);
    const qemuImg = `${dir}/qemu.img`, vmeshImg = `${dir}/vmesh.img`;
    await Deno.writeFile(qemuImg, img);
    await Deno.writeFile(vmeshImg, img);
    const out = await assertSameAsQemu({
      name: "virtio_legacy_blk",
      qemuArgs: qemuBlkSlot0(qemuImg),
      disks: { 0: vmeshImg },
      minLines: 15,
    });
    assert.match(out, /^read before DRIVER_OK: text="sector 3"$/m);
    assert.match(out, /^read sector 1: text="sector 1"$/m);
    assert.match(out, /^read back sector 2: text="written by the guest"$/m);
    const a = await Deno.readFile(qemuImg), b = await Deno.readFile(vmeshImg);
    assert.ok(a.some((x, i) => x !== img[i]), "the guest wrote the disk");
    assert.ok(a.length === b.length && a.every((x, i) => x === b[i]), "both disks end equal");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("qemu compat: legacy (Version 1) virtio-mmio transport, QEMU virt's default", async () => {
  const out = await assertSameAsQemu({
    name: "virtio_mmio_v1_rng",
    qemuArgs: QEMU_LEGACY_RNG_SLOT0,
    rngSlots: [0],
    legacy: true,
    minLines: 18,
  });
  assert.match(out, /^version=0+1$/m);
  assert.match(out, /^5 entries, align 64: bytes=0+70$/m);
  assert.match(out, /^status after QueuePFN 0=0+$/m);
});

Deno.test("qemu compat: virtio-net without VERSION_1 uses the legacy 10-byte header", async () => {
  const out = await assertSameAsQemu({
    name: "virtio_legacy_net",
    qemuArgs: QEMU_NET_SLOT0,
    netSlots: [0],
    minLines: 10,
  });
  assert.match(out, /^reply frame starts at offset 10 \(addressed to us\)=0+1$/m);
  assert.match(out, /^sender ip=0+a000202$/m);
});
