/**
 * Differential tests of virtio-mmio leniency against qemu-system-riscv64 7.2: a bare-metal
 * virtio-rng driver that negotiates only the low 32 feature bits (no VIRTIO_F_VERSION_1, as
 * xv6 does) must keep FEATURES_OK and get entropy, on QEMU and on vmesh, with identical output.
 */
import assert from "node:assert/strict";
import { assertSameAsQemu, QEMU_RNG_SLOT0 } from "./qemu_compat_harness.ts";

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
