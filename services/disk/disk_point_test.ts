/**
 * Disk points: a checkpoint copies the overlay with the backend held still (every write
 * answered before it is in the point, later writes are not), leaves the point read-only,
 * refuses a name used before and a writable disk without an overlay; a read-only image is its
 * own point.
 */
import assert from "node:assert/strict";
import { type BusError, Status } from "@vmesh/bus";
import { CowOverlay } from "./cow_overlay.ts";
import { RawFile } from "./raw_file.ts";
import { checkpointHandler } from "./disk_point.ts";

Deno.test("disk point: a frozen copy of the overlay at the checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-disk-point-" });
  try {
    await Deno.writeFile(`${dir}/base.img`, new Uint8Array(1 << 20));
    await CowOverlay.create(`${dir}/vm.cow`, `${dir}/base.img`);
    const cow = await CowOverlay.open(`${dir}/vm.cow`);
    await cow.write(0, new Uint8Array(512).fill(1));
    const checkpoint = checkpointHandler({
      vm: "vm1",
      device: "disk0",
      backend: cow,
      kind: "cow",
      image: `${dir}/base.img`,
      overlay: `${dir}/vm.cow`,
    });
    // Queued before the checkpoint: in the point.
    const early = cow.write(512, new Uint8Array(512).fill(2));
    const r = await checkpoint({ name: "s1", dir: `${dir}/points` });
    await early;
    await cow.write(0, new Uint8Array(512).fill(3));
    assert.equal(r.point, `${dir}/points/vm1.disk0.s1.cow`);
    assert.equal(r.backend, "cow");
    assert.equal((await Deno.stat(r.point)).mode! & 0o222, 0);
    const frozen = await CowOverlay.open(r.point, { readOnly: true });
    assert.deepEqual(
      (await frozen.read(0, 1024)).slice(0, 1024),
      new Uint8Array([
        ...new Uint8Array(512).fill(1),
        ...new Uint8Array(512).fill(2),
      ]),
    );
    frozen.close();
    assert.equal((await cow.read(0, 512))[0], 3, "the live disk takes writes again");
    await assert.rejects(
      () => checkpoint({ name: "s1", dir: `${dir}/points` }),
      (e: BusError) => e.code === Status.FAILED_PRECONDITION && /exists already/.test(e.message),
    );
    await assert.rejects(
      () => checkpoint({ name: "../x" }),
      (e: BusError) => e.code === Status.INVALID_ARGUMENT,
    );
    cow.close();

    const raw = await RawFile.open(`${dir}/base.img`);
    await assert.rejects(
      () =>
        checkpointHandler({ vm: "vm1", device: "disk1", backend: raw, kind: "raw", image: "x" })({
          name: "s1",
        }),
      (e: BusError) => e.code === Status.FAILED_PRECONDITION && /--overlay/.test(e.message),
    );
    raw.close();
    const ro = await RawFile.open(`${dir}/base.img`, { readOnly: true });
    const same = await checkpointHandler({
      vm: "vm1",
      device: "disk1",
      backend: ro,
      kind: "raw",
      image: `${dir}/base.img`,
    })({ name: "s1" });
    assert.equal(same.point, `${dir}/base.img`);
    ro.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
