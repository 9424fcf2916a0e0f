/**
 * Disk points in the memory service, with real services and a real Linux guest: a VM booted on
 * its own copy of the data image (`--drive COPY --disk-backend cow`) is snapshotted twice with
 * `--disk-layers` (the point and the base stored as chunk pages; the second sends none of the
 * base's chunks again) and once without. Then the point files and the base copy are deleted, as on a host that
 * never had them: the snapshot without layers is refused with one line and nothing started
 * (restore and export alike), the one with them exports from the layers;
 * the one with them restores on a second bus over the same store — its disk rebuilt from the
 * bus — and the guest counts on and reads the disk the point held (same MD5, page cache
 * dropped); two clones from it share one rebuilt base and point, each on its own copy.
 */
import assert from "node:assert/strict";
import { connect, startEmbeddedNats } from "@vmesh/bus";
import {
  cleanUp,
  diskMd5,
  EVAL_LOOP,
  guestDiskMd5,
  keptTicks,
  run,
  until,
  vmesh,
} from "./snapshot_test_support.ts";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { ensureGuestImages } from "../guest/mod.ts";

Deno.test("./vmesh snapshot --disk-layers: a restore without the disk files rebuilds them from the bus", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-disk-layers-" });
  const natsA = await startEmbeddedNats();
  const natsB = await startEmbeddedNats();
  const busA = await connect({ url: natsA.url, name: "test-layers-a", log: () => {} });
  const busB = await connect({ url: natsB.url, name: "test-layers-b", log: () => {} });
  const [envA, envB] = [{ NATS_URL: natsA.url }, { NATS_URL: natsB.url }];
  const store = ["--store", `dir:${dir}/store`];
  const capA = new ConsoleCapture(busA, "dlA");
  const capB = new ConsoleCapture(busB, "dlB");
  let boot: Deno.ChildProcess | undefined;
  let restore: Deno.ChildProcess | undefined;
  try {
    const base = `${dir}/base.ext4`;
    await Deno.copyFile(images.disk, base);
    boot = vmesh(
      ["boot", "--name", "dlA", "--drive", base, "--disk-backend", "cow", "--", EVAL_LOOP],
      envA,
    );
    await until("ticks from the booted guest", () => keptTicks(capA.text).length >= 2);
    const before = Math.max(...keptTicks(capA.text));
    const points = ["--disk-dir", `${dir}/points`];
    const snap = await run(
      ["snapshot", "dlA", "--name", "dl-1", "--disk-layers", ...points, ...store],
      envA,
    );
    assert.equal(snap.code, 0, snap.stderr);
    const after = Math.max(...keptTicks(capA.text));
    console.log(snap.stdout.trim());
    const layers = /disk layers stored: disk0 base (\d+) chunks, (\d+) pages sent .*; disk0 point/;
    const m = layers.exec(snap.stdout);
    assert.ok(m, snap.stdout);
    assert.ok(Number(m[1]) > 100 && Number(m[2]) === Number(m[1]) + 1, "base chunks and map sent");
    // The same base again: none of its chunks is sent twice.
    const second = await run(
      ["snapshot", "dlA", "--name", "dl-2", "--disk-layers", ...points, ...store],
      envA,
    );
    assert.equal(second.code, 0, second.stderr);
    assert.equal(layers.exec(second.stdout)?.[2], "0", second.stdout);
    const plain = await run(["snapshot", "dlA", "--name", "dl-3", ...points, ...store], envA);
    assert.equal(plain.code, 0, plain.stderr);
    boot.kill("SIGTERM");
    await boot.output();
    boot = undefined;

    const wantMd5 = await diskMd5(`${dir}/points/dlA.disk0.dl-1.cow`, base);
    await Deno.remove(`${dir}/points`, { recursive: true });
    await Deno.remove(base);

    const refused = await run(["restore", "dl-3", "--name", "dlB", ...store], envB);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(
      refused.stderr,
      /disk disk0: .*dlA\.disk0\.dl-3\.cow is not on this host, and snapshot dl-3 holds no layers/,
    );
    assert.doesNotMatch(capB.text, /tick/, "nothing ran");
    // Export works from the layers too; without them it says what to do.
    const exp = await run(["export", "dl-1", "-o", `${dir}/dl-1.tar`, ...store], envB);
    assert.equal(exp.code, 0, exp.stderr);
    assert.match(exp.stdout, /disk0 32\.\d MiB base \+ 0\.\d MiB point/);
    const noLayers = await run(["export", "dl-3", "-o", `${dir}/dl-3.tar`, ...store], envB);
    assert.equal(noLayers.code, 1);
    assert.match(
      noLayers.stderr,
      /cannot read its base image .*take the snapshot with --disk-layers/,
    );

    restore = vmesh(
      ["restore", "dl-1", "--name", "dlB", "--console", `log:${dir}/dlB.log`, ...store],
      envB,
    );
    await until("two ticks from the restored guest", () => keptTicks(capB.text).length >= 2);
    const got = keptTicks(capB.text);
    assert.ok(got[0] > before && got[0] <= after + 1, `restored at ${got[0]}: ${before}..${after}`);
    const sum = await guestDiskMd5(busB, "dlB", capB);
    assert.equal(sum, wantMd5, "the restored guest reads the point's disk");
    console.log(`restored at tick ${got[0]} (snapshot ${before}..${after}), disk MD5 ${sum}`);
    restore.kill("SIGTERM");
    const r = await restore.output();
    restore = undefined;
    const said = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 143, said);
    assert.match(said, /disk disk0: .*dl-1\.disk0\.base with a copy of layers from the memory/);

    // Two clones from the layers: one base and one point rebuilt, shared; each its own copy.
    const clones = `${dir}/clones`;
    const clone = vmesh(
      ["clone", "dl-1", "--count", "2", "--name", "dlc", "--run-dir", clones, ...store],
      envB,
    );
    try {
      for (const vm of ["dlc1", "dlc2"]) {
        await until(
          `a tick from ${vm}`,
          async () =>
            keptTicks(await Deno.readTextFile(`${clones}/${vm}.log`).catch(() => "")).length >= 1,
        );
      }
      const files = [...Deno.readDirSync(clones)].map((e) => e.name).filter((n) =>
        !n.endsWith(".log")
      );
      assert.deepEqual(files.sort(), [
        "dl-1.disk0.base",
        "dl-1.disk0.point.cow",
        "dlc1.disk0.cow",
        "dlc2.disk0.cow",
      ]);
    } finally {
      clone.kill("SIGTERM");
      const c = await clone.output();
      assert.equal(c.code, 143, new TextDecoder().decode(c.stderr));
    }
  } finally {
    await cleanUp({
      procs: [boot, restore],
      closers: [capA, capB, busA, busB],
      nats: [natsA, natsB],
      dir,
    });
  }
});
