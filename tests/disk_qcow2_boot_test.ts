/**
 * End to end: a real Linux guest on the disk service serving a qcow2 overlay (made by
 * `qemu-img create -b`) over the data disk converted by `qemu-img convert -O qcow2`. The guest
 * reads the base's files, writes new ones, deletes and trims (discard); then `qemu-img check`
 * is clean, the base is untouched, and QEMU itself (qemu-system-riscv64, a real guest) reads
 * what vmesh wrote. The other way round too: what a QEMU guest wrote, a vmesh guest reads.
 * And `./vmesh boot --drive FILE.qcow2,format=qcow2`, in place and with `--disk-backend cow`.
 */
import assert from "node:assert/strict";
import { startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages, type GuestManifest, runQemuBatch } from "../guest/mod.ts";
import { startService } from "./services_harness.ts";
import { diskArgs, runGuest, sha256File } from "./guest_vm.ts";
import { bootBatch, imageArgs } from "./vmesh_boot.ts";

async function qemuImg(args: string[]): Promise<string> {
  const out = await new Deno.Command("qemu-img", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (out.code !== 0) throw new Error(`qemu-img ${args.join(" ")} exited ${out.code}:\n${text}`);
  return text;
}

/** QEMU's -drive/-device arguments for a qcow2 virtio-blk disk. */
function qemuDrive(file: string, snapshot: boolean): string[] {
  const opts = `file=${file},if=none,format=qcow2,id=d0${snapshot ? ",snapshot=on" : ""}`;
  return ["-drive", opts, "-device", "virtio-blk-device,drive=d0"];
}

Deno.test("Linux on a qcow2 overlay over the converted data disk, checked by QEMU", async () => {
  const images = await ensureGuestImages();
  const manifest = JSON.parse(await Deno.readTextFile(images.manifest)) as GuestManifest;
  const patternSha = manifest.data.pattern.sha256;
  const dir = await Deno.makeTempDir({ prefix: "vmesh-qcow2-boot-" });
  const nats = await startEmbeddedNats();
  try {
    const base = `${dir}/data.qcow2`;
    await qemuImg(["convert", "-O", "qcow2", images.disk, base]);
    const baseSha = await sha256File(base);
    const overlay = `${dir}/vm.qcow2`;
    await qemuImg(["create", "-f", "qcow2", "-b", "data.qcow2", "-F", "qcow2", overlay]);

    // vmesh: read the base through the overlay, write, delete and trim.
    const disk = await startService("disk", diskArgs("vmQ", "disk0", overlay), nats.url);
    let written: string;
    try {
      assert.match(disk.ready, / qcow2 /, disk.ready);
      const r = await runGuest(
        images,
        nats.url,
        "vmQ",
        ["disk0"],
        "mount /dev/vda /mnt && sha256sum /mnt/pattern.bin && " +
          "echo hello-from-vmesh-$((40+2)) > /mnt/hello.txt && " +
          "dd if=/mnt/pattern.bin of=/mnt/copy.bin bs=64k count=128 2>/dev/null && " +
          "dd if=/dev/zero of=/mnt/junk.bin bs=64k count=64 2>/dev/null && sync && " +
          "rm /mnt/junk.bin && sync && fstrim -v /mnt && sha256sum /mnt/copy.bin && umount /mnt",
      );
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, new RegExp(`${patternSha}\\s+/mnt/pattern\\.bin`), r.output);
      assert.match(r.output, /\/mnt: \d+ .*trimmed/, r.output);
      written = r.output.match(/([0-9a-f]{64})\s+\/mnt\/copy\.bin/)![1];
    } finally {
      assert.equal(await disk.stop(), 0);
    }

    const check = await qemuImg(["check", overlay]);
    assert.match(check, /No errors were found on the image/, check);
    assert.equal(await sha256File(base), baseSha, "the base image is unchanged");

    // QEMU boots on what vmesh wrote (snapshot=on: its journal replay stays in memory).
    const q = await runQemuBatch(
      images,
      "mount /dev/vda /mnt && cat /mnt/hello.txt && sha256sum /mnt/copy.bin && " +
        "(ls /mnt/junk.bin 2>/dev/null || echo junk-gone-$((1+1))) && " +
        "echo from-qemu-$((5+5)) > /mnt/q.txt && sync && umount /mnt",
      { disk: false, net: false, extra: qemuDrive(overlay, true), timeoutMs: 120_000 },
    );
    assert.equal(q.status, 0, q.console.slice(-3000));
    assert.match(q.output!, /hello-from-vmesh-42/);
    assert.match(q.output!, new RegExp(`${written}\\s+/mnt/copy\\.bin`), q.output!);
    assert.match(q.output!, /junk-gone-2/);

    // And the other way: a QEMU guest writes the overlay, a vmesh guest reads it.
    const q2 = await runQemuBatch(
      images,
      "mount /dev/vda /mnt && echo qemu-wrote-$((6+1)) > /mnt/q.txt && sync && umount /mnt",
      { disk: false, net: false, extra: qemuDrive(overlay, false), timeoutMs: 120_000 },
    );
    assert.equal(q2.status, 0, q2.console.slice(-3000));
    const again = await startService(
      "disk",
      [...diskArgs("vmR", "disk0", overlay), "--read-only"],
      nats.url,
    );
    try {
      const r = await runGuest(
        images,
        nats.url,
        "vmR",
        ["disk0"],
        "mount -o ro,noload /dev/vda /mnt && cat /mnt/q.txt /mnt/hello.txt && umount /mnt",
      );
      assert.equal(r.status, 0, r.output);
      assert.match(r.output, /qemu-wrote-7/);
      assert.match(r.output, /hello-from-vmesh-42/);
    } finally {
      await again.stop();
    }
    assert.equal(await sha256File(base), baseSha, "the base image is unchanged");
  } finally {
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("./vmesh boot --drive FILE.qcow2: in place, and under --disk-backend cow", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-qcow2-launcher-" });
  try {
    const drive = `${dir}/data.qcow2`;
    await qemuImg(["convert", "-O", "qcow2", images.disk, drive]);
    const write = "mount /dev/vda /mnt && echo launcher-$((30+3)) > /mnt/l.txt && sync && " +
      "cat /mnt/l.txt && umount /mnt";
    const cow = await bootBatch(
      [...imageArgs(images), "--drive", drive, "--disk-backend", "cow"],
      write,
    );
    assert.equal(cow.code, 0, cow.stderr);
    assert.match(cow.stdout, /launcher-33/);
    const sha = await sha256File(drive);
    const inPlace = await bootBatch(
      [...imageArgs(images), "--drive", `${drive},format=qcow2`],
      "mount /dev/vda /mnt && (cat /mnt/l.txt || echo no-l-$((1+1))) && " +
        "echo in-place-$((4+4)) > /mnt/p.txt && sync && umount /mnt",
    );
    assert.equal(inPlace.code, 0, inPlace.stderr);
    assert.match(inPlace.stdout, /no-l-2/, "the cow run left the drive as it was");
    assert.notEqual(await sha256File(drive), sha, "the in-place run wrote the drive");
    const check = await qemuImg(["check", drive]);
    assert.match(check, /No errors were found on the image/, check);
    await qemuImg(["convert", "-O", "raw", drive, `${dir}/view.raw`]);
    const cat = await new Deno.Command("debugfs", {
      args: ["-R", "cat /p.txt", `${dir}/view.raw`],
      stdout: "piped",
      stderr: "null",
    }).output();
    assert.equal(new TextDecoder().decode(cat.stdout).trim(), "in-place-8");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
