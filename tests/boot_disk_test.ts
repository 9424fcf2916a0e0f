/**
 * Guest-level disk tests: the real Linux guest on real disk service processes. Two VMs share
 * one read-only base image through their own copy-on-write overlays; a disk service killed
 * (SIGKILL) while the guest reads a 32 MiB file is replaced and the read completes intact.
 */
import assert from "node:assert/strict";
import { startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages, type GuestManifest } from "../guest/mod.ts";
import { startService } from "./services_harness.ts";
import {
  diskArgs,
  endpointCounts,
  type GuestRun,
  runGuest,
  sha256File,
  startGuest,
} from "./guest_vm.ts";

async function manifest(path: string): Promise<GuestManifest> {
  return JSON.parse(await Deno.readTextFile(path)) as GuestManifest;
}

Deno.test("two VMs on one read-only base image, each with its own COW overlay", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-disk-" });
  const nats = await startEmbeddedNats();
  try {
    const base = `${dir}/base.ext4`;
    await Deno.copyFile(images.disk, base);
    await Deno.chmod(base, 0o444);
    const baseSha = await sha256File(base);
    const overlayA = `${dir}/a.cow`;
    const overlayB = `${dir}/b.cow`;

    // One VM's run: its own disk service over the shared base, stopped after the run.
    const run = async (vm: string, overlay: string, command: string) => {
      const disk = await startService("disk", diskArgs(vm, "disk0", base, overlay), nats.url);
      try {
        return await runGuest(images, nats.url, vm, ["disk0"], command);
      } finally {
        await disk.stop();
      }
    };

    const a1 = await run(
      "vmA",
      overlayA,
      "mount /dev/vda /mnt && echo from-vm-$((10+1)) > /mnt/a.txt && sync && umount /mnt && " +
        "echo a-written",
    );
    assert.equal(a1.status, 0, a1.output);
    assert.match(a1.output, /a-written/);

    const b = await run(
      "vmB",
      overlayB,
      "mount /dev/vda /mnt && ls /mnt && (cat /mnt/a.txt || echo no-a-$((1+1))) && " +
        "echo from-vm-$((20+2)) > /mnt/b.txt && sync && umount /mnt",
    );
    assert.equal(b.status, 0, b.output);
    assert.match(b.output, /pattern\.bin/, "vmB sees the base's files");
    assert.match(b.output, /no-a-2/, "vmB must not see vmA's file");
    assert.doesNotMatch(b.output, /from-vm-11/);

    assert.equal(await sha256File(base), baseSha, "the base image is unchanged");
    assert.equal((await Deno.stat(overlayA)).isFile, true);

    const a2 = await run(
      "vmA",
      overlayA,
      "mount -o ro /dev/vda /mnt && cat /mnt/a.txt && (cat /mnt/b.txt || echo no-b-$((3+3)))",
    );
    assert.equal(a2.status, 0, a2.output);
    assert.match(a2.output, /from-vm-11/, "vmA's overlay keeps its file across boots");
    assert.match(a2.output, /no-b-6/, "vmA must not see vmB's file");
    assert.equal(await sha256File(base), baseSha, "the base image is unchanged");
  } finally {
    await nats.stop();
    await Deno.chmod(`${dir}/base.ext4`, 0o644).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the disk service is killed during a 32 MiB read and replaced: the read completes intact", async () => {
  const images = await ensureGuestImages();
  const want = (await manifest(images.manifest)).data.pattern.sha256;
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-disk-" });
  const nats = await startEmbeddedNats();
  const image = `${dir}/data.ext4`;
  await Deno.copyFile(images.disk, image);
  const args = diskArgs("vmK", "disk0", image);
  let disk = await startService("disk", args, nats.url);
  let run: GuestRun | undefined;
  try {
    // The markers are computed by the shell so the kernel command line echo does not contain them.
    run = await startGuest(
      images,
      nats.url,
      "vmK",
      ["disk0"],
      "mount -o ro /dev/vda /mnt && echo READ-$((2+3))-START && sha256sum /mnt/pattern.bin && " +
        "echo READ-$((3+4))-DONE && " +
        // The command line echo and the (always there) syscon-poweroff probe line are not I/O.
        "(dmesg | grep -i -E 'error|i/o' | grep -v -e 'Kernel command line' -e syscon-poweroff " +
        "|| echo no-io-errors-$((4+5)))",
    );
    await run.waitFor("READ-5-START");
    // Let the read get going, then check it is still in progress when the service dies.
    await new Promise((r) => setTimeout(r, 1000));
    assert.doesNotMatch(run.console.text, /READ-7-DONE/, "the read ended before the kill");
    await disk.stop("SIGKILL");
    disk = await startService("disk", args, nats.url);

    const r = await run.done;
    assert.ok(r.batch, `the command did not finish (cpu exit ${r.code}):\n${r.log}`);
    assert.equal(r.batch.status, 0, r.batch.output);
    assert.match(r.batch.output, new RegExp(`${want}\\s+/mnt/pattern\\.bin`), r.batch.output);
    assert.match(r.batch.output, /READ-7-DONE/);
    assert.match(r.batch.output, /no-io-errors-9/, r.batch.output);
    // The replacement served part of the read: the guest's I/O really crossed the kill.
    const reads = await endpointCounts(nats.url, "vmesh-disk", "read");
    assert.ok(reads.requests > 0, "the replacement disk service served no reads");
    assert.equal(reads.errors, 0);
  } finally {
    // A failed assertion above leaves the guest running: stop it (done stops its console).
    await run?.cpu.stop("SIGKILL");
    await run?.done;
    await disk.stop();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
