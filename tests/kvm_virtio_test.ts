/**
 * virtio-blk on the x86 KVM machine, its backend the real disk service on a real nats-server
 * (as for RISC-V guests): the minimal kernel (guest/x86/kernel.ts) finds the virtio-mmio window
 * from `virtio_mmio.device=` on its command line, mounts the cached ext4 data disk read-write as
 * its root (reads through the bus) and writes its superblock (the mount count goes up by one in
 * the image file, whose sha256 changes). Kernel-level only: on a PVM host guest user space
 * cannot run (services/cpu/kvm/host_kvm.ts), and the emulated boot takes minutes, so there it
 * runs only with VMESH_TEST_KVM_LINUX=1; on a hardware KVM host it always runs.
 * VMESH_TEST_KVM_VMLINUX boots another vmlinux (built with the same fragment).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { BusBlockClient } from "../services/cpu/backends/bus_block_client.ts";
import { VirtioBlk } from "../services/cpu/virtio/blk.ts";
import { KvmMachine } from "../services/cpu/kvm/mod.ts";
import { kvmBackend, PVM_KERNEL_ARGS } from "../services/cpu/kvm/host_kvm.ts";
import { virtioMmioCmdline } from "../services/cpu/kvm/virtio_mmio_x86.ts";
import { ensureX86Kernel } from "../guest/x86/kernel.ts";
import { ensureDataDisk } from "../guest/mod.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

const hasKvm = await Deno.stat("/dev/kvm").then(() => true, () => false);
const pvm = hasKvm && kvmBackend() === "pvm";
const ignore = !hasKvm || (pvm && Deno.env.get("VMESH_TEST_KVM_LINUX") !== "1");
const skipWhy = hasKvm
  ? "a PVM host emulates the guest kernel, minutes per boot; set VMESH_TEST_KVM_LINUX=1"
  : "/dev/kvm is absent";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
/** ext4 superblock s_mnt_count (le16 at byte 1024 + 0x34). */
const mountCount = (img: Uint8Array) => img[1024 + 0x34] | (img[1024 + 0x35] << 8);

Deno.test({
  name: "kvm: the minimal kernel mounts a virtio-blk disk served over the bus read-write" +
    (ignore ? ` (skipped: ${skipWhy})` : ""),
  ignore,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "vmesh-kvm-virtio-" });
    const tb = await startTestBus();
    const procs: ServiceProcess[] = [];
    try {
      const image = `${dir}/disk.ext4`;
      await Deno.copyFile((await ensureDataDisk()).disk, image);
      const before = await Deno.readFile(image);
      procs.push(
        await startService(
          "disk",
          ["--vm", "kvm1", "--device", "disk0", "--image", image],
          tb.nats.url,
        ),
      );
      const blk = await VirtioBlk.open(new BusBlockClient(tb.bus, { vm: "kvm1", device: "disk0" }));
      const kernel = await Deno.readFile(
        Deno.env.get("VMESH_TEST_KVM_VMLINUX") ?? (await ensureX86Kernel()).vmlinux,
      );
      let out = "";
      const decoder = new TextDecoder();
      const vm = new KvmMachine({
        kernel,
        cmdline: [
          "console=ttyS0 reboot=k panic=-1 root=/dev/vda rw rootfstype=ext4",
          virtioMmioCmdline(1),
          pvm ? PVM_KERNEL_ARGS : "",
        ].join(" "),
        memoryBytes: 256 << 20,
        virtio: [blk],
        onConsole: (b) => out += decoder.decode(b, { stream: true }),
      });
      let exit;
      try {
        exit = await vm.run();
      } finally {
        vm.close();
      }
      // No init on the data disk (and none runs on PVM): the kernel panics and resets.
      assert.equal(exit.kind, "reset", `${exit.message}\n${out.slice(-3000)}`);
      assert.match(out, /virtio_blk virtio0: \[vda\] 131072 512-byte logical blocks/, out);
      assert.match(out, /EXT4-fs \(vda\): mounted filesystem/);
      assert.match(out, /VFS: Mounted root \(ext4 filesystem\) on device/);
      assert.ok(blk.completed.ok > 0, "virtio-blk requests completed");
      await procs[0].stop("SIGTERM");
      const after = await Deno.readFile(image);
      assert.notEqual(sha256(after), sha256(before), "the guest wrote the disk");
      assert.equal(mountCount(after), mountCount(before) + 1, "one more mount in the superblock");
    } finally {
      for (const p of procs) await p.stop("SIGKILL").catch(() => {});
      await tb.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
