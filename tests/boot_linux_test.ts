/**
 * The headline: `./vmesh boot` boots the guest Linux (OpenSBI, kernel, busybox initramfs)
 * with its disk on the disk service, in batch mode: a command's output comes back; a file
 * written to the virtio disk survives a poweroff and a second boot, and the filesystem is
 * clean (`e2fsck -fn`). Real processes, real nats-server, real images (built once, cached).
 */
import assert from "node:assert/strict";
import { startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages, type GuestImages } from "../guest/mod.ts";
import { startService } from "./services_harness.ts";
import { bootBatch, type BootResult, imageArgs } from "./vmesh_boot.ts";

function boot(
  images: GuestImages,
  extra: string[],
  command: string,
  env: Record<string, string> = {},
): Promise<BootResult> {
  return bootBatch([...imageArgs(images), ...extra], command, env);
}

Deno.test("vmesh boot: Linux runs a batch command and powers off", async () => {
  const images = await ensureGuestImages();
  const r = await boot(images, [], "echo vmesh-says-$((6*7)); uname -sm; cat /proc/cmdline");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /vmesh-says-42/, r.stderr);
  assert.match(r.stdout, /Linux riscv64/);
  assert.match(r.stderr, /the Linux kernel started/);
  assert.match(r.stderr, /guest powered off/);
});

Deno.test("vmesh boot: --nic switch=NAME,mac=MAC gives the guest's eth0 that MAC", async () => {
  const images = await ensureGuestImages();
  const r = await boot(
    images,
    ["--nic", "switch=mactest,mac=52:54:00:ab:cd:ef"],
    "cat /sys/class/net/eth0/address",
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^52:54:00:ab:cd:ef$/m, r.stderr);
});

Deno.test("vmesh boot: a file written to the virtio disk survives a reboot, e2fsck clean", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-linux-" });
  try {
    const disk = `${dir}/data.ext4`;
    await Deno.copyFile(images.disk, disk);
    const w = await boot(
      images,
      ["--drive", disk],
      "mount /dev/vda /mnt && echo vmesh-persist-$((40+2)) > /mnt/hello.txt && sync && " +
        "umount /mnt && echo written-ok",
    );
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /written-ok/, w.stderr);

    const r = await boot(
      images,
      ["--drive", disk],
      "mount -o ro /dev/vda /mnt && cat /mnt/hello.txt",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /vmesh-persist-42/, r.stderr);

    const fsck = await new Deno.Command("e2fsck", { args: ["-fn", disk] }).output();
    assert.equal(
      fsck.code,
      0,
      new TextDecoder().decode(fsck.stdout) + new TextDecoder().decode(fsck.stderr),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh boot: two VMs on one bus ping each other through the net service's switch", async () => {
  const images = await ensureGuestImages();
  const nats = await startEmbeddedNats({ jetstream: false });
  // One switch for both (each launcher sees it on the bus and does not start its own).
  const lan = await startService("net", ["--switch", "lan"], nats.url);
  try {
    const env = { NATS_URL: nats.url };
    const vm = (name: string, me: string, peer: string) =>
      boot(
        images,
        ["--name", name, "--nic", "switch=lan"],
        // Ping until the peer answers, then stay up a while so the peer's ping is answered too.
        `ip addr add ${me}/24 dev eth0 && ip link set eth0 up && ping -c 1 -w 300 ${peer} && ` +
          "sleep 15",
        env,
      );
    const [a, b] = await Promise.all([
      vm("vmA", "10.0.0.1", "10.0.0.2"),
      vm("vmB", "10.0.0.2", "10.0.0.1"),
    ]);
    for (const r of [a, b]) {
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.match(r.stdout, /1 packets received, 0% packet loss/, r.stderr);
    }
  } finally {
    await lan.stop();
    await nats.stop();
  }
});
