/**
 * Appliances as a user makes and runs them, on real nats-servers with `./vmesh boot`'s
 * processes and a real Linux guest: `./vmesh snapshot` then `./vmesh export SNAP -o ap.tar`
 * (a real tar: `tar` lists it, `sha256sum -c` checks its members); the source's points and
 * store are then deleted, so the file is the only link. On a second bus with its own store, a
 * truncated and a corrupted copy are refused with one line and leave nothing (no snapshot, no
 * disk file, no VM); `./vmesh import ap.tar --name apB` runs the guest on: its counter goes on,
 * the tmpfs file written before the snapshot is there, and the disk it reads (page cache
 * dropped) has the same MD5 (16 MiB past the counter) as the point over its base on the host,
 * and the rebuilt layer files are byte-equal to the exported ones.
 */
import assert from "node:assert/strict";
import { connect, startEmbeddedNats } from "@vmesh/bus";
import { sha256File } from "./guest_vm.ts";
import {
  cleanUp,
  diskMd5,
  EVAL_LOOP,
  guestDiskMd5,
  keptTicks as ticks,
  run,
  until,
  vmesh,
} from "./snapshot_test_support.ts";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { ensureGuestImages } from "../guest/mod.ts";

async function sh(cmd: string, cwd: string): Promise<string> {
  const r = await new Deno.Command("sh", {
    args: ["-c", cmd],
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const out = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `${cmd}: ${out}`);
  return out;
}

Deno.test("./vmesh export, then import on another bus: the guest carries on, disk equal", async () => {
  await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-appliance-" });
  const natsA = await startEmbeddedNats();
  const natsB = await startEmbeddedNats();
  const busA = await connect({ url: natsA.url, name: "test-appliance-a", log: () => {} });
  const busB = await connect({ url: natsB.url, name: "test-appliance-b", log: () => {} });
  const [envA, envB] = [{ NATS_URL: natsA.url }, { NATS_URL: natsB.url }];
  const storeA = ["--store", `dir:${dir}/storeA`];
  const storeB = ["--store", `dir:${dir}/storeB`];
  const disksB = `${dir}/disksB`;
  const capA = new ConsoleCapture(busA, "apA");
  const capB = new ConsoleCapture(busB, "apB");
  let boot: Deno.ChildProcess | undefined;
  let imported: Deno.ChildProcess | undefined;
  try {
    boot = vmesh(["boot", "--name", "apA", "--", EVAL_LOOP], envA);
    await until("ticks from the booted guest", () => ticks(capA.text).length >= 2);
    const before = Math.max(...ticks(capA.text));
    const snap = await run(
      ["snapshot", "apA", "--name", "ap-1", "--disk-dir", `${dir}/points`, ...storeA],
      envA,
    );
    assert.equal(snap.code, 0, snap.stderr);
    const after = Math.max(...ticks(capA.text));
    console.log(snap.stdout.trim());
    boot.kill("SIGTERM");
    await boot.output();
    boot = undefined;

    const tar = `${dir}/ap.tar`;
    const exp = await run(["export", "ap-1", "-o", tar, ...storeA], envA);
    assert.equal(exp.code, 0, exp.stderr);
    console.log(exp.stdout.trim());
    assert.match(exp.stdout, /ap\.tar: [\d.]+ MiB \(\d+ bytes\): \d+ pages .*disk0 .*MiB base \+/);
    const again = await run(["export", "ap-1", "-o", tar, ...storeA], envA);
    assert.equal(again.code, 1, "an existing file is not overwritten");
    assert.match(again.stderr, /exists already/);

    // A real tar whose SHA256SUMS checks with sha256sum.
    const listing = await sh(`tar tf ${tar}`, dir);
    assert.match(listing, /^vmesh-appliance\.json\nsnapshot\.pb\npages\.idx\npages\.bin\n/);
    assert.match(listing, /disks\/disk0\.base\.map\ndisks\/disk0\.base\.data\n/);
    assert.match(listing, /disks\/disk0\.point\.data\nSHA256SUMS\n$/);
    await Deno.mkdir(`${dir}/x`);
    await sh(`tar xf ${tar} && sha256sum -c --quiet SHA256SUMS`, `${dir}/x`);
    await Deno.remove(`${dir}/x`, { recursive: true });

    // What the guest's disk held at the snapshot, then the source's store and points go.
    const point = `${dir}/points/apA.disk0.ap-1.cow`;
    const images = await ensureGuestImages();
    const wantMd5 = await diskMd5(point, images.disk);
    const pointSha = await sha256File(point);
    await Deno.remove(`${dir}/points`, { recursive: true });
    await Deno.remove(`${dir}/storeA`, { recursive: true });

    // A truncated and a corrupted copy: refused, nothing stored, written or started.
    const bytes = await Deno.readFile(tar);
    const bad = [
      ["truncated", bytes.subarray(0, Math.floor(bytes.length * 0.6)), /truncated at byte/],
      ["corrupt", bytes.slice(), /does not match its SHA-256 \(the file is corrupt\)/],
    ] as const;
    bad[1][1][Math.floor(bytes.length / 2)] ^= 0x40;
    for (const [what, data, why] of bad) {
      await Deno.writeFile(`${dir}/${what}.tar`, data);
      const r = await run(
        ["import", `${dir}/${what}.tar`, "--no-run", "--disk-dir", disksB, ...storeB],
        envB,
      );
      assert.equal(r.code, 1, `${what}: ${r.stderr}`);
      assert.match(r.stderr, why, what);
      assert.match(r.stderr, /nothing was imported/, what);
      assert.deepEqual([...Deno.readDirSync(disksB)], [], `${what}: no file left in ${disksB}`);
    }
    const none = await run(["snapshots", ...storeB], envB);
    assert.doesNotMatch(none.stdout, /ap-1/, "nothing stored from the bad copies");

    imported = vmesh(
      [
        "import",
        tar,
        "--name",
        "apB",
        "--snapshot",
        "ap-imported",
        "--disk-dir",
        disksB,
        "--console",
        `log:${dir}/apB.log`,
        ...storeB,
      ],
      envB,
    );
    await until("two ticks from the imported guest", () => ticks(capB.text).length >= 2, 90_000);
    const got = ticks(capB.text);
    assert.ok(got[0] > before && got[0] <= after + 1, `imported at ${got[0]}: ${before}..${after}`);
    assert.doesNotMatch(capB.text, /Linux version/, "no boot: the guest carried on");
    assert.equal(await sha256File(`${disksB}/ap-imported.disk0.point.cow`), pointSha);
    assert.equal(
      await sha256File(`${disksB}/ap-imported.disk0.base`),
      await sha256File(images.disk),
    );

    const sum = await guestDiskMd5(busB, "apB", capB);
    assert.equal(sum, wantMd5, "the imported guest reads the snapshot's disk");
    console.log(
      `imported guest resumed at tick ${got[0]} (snapshot ${before}..${after}); ` +
        `disk MD5 ${sum} as the point's`,
    );

    imported.kill("SIGTERM");
    const r = await imported.output();
    imported = undefined;
    const said = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 143, said);
    const out = new TextDecoder().decode(r.stdout);
    console.log(out.trim());
    assert.match(out, /imported .*ap\.tar as snapshot ap-imported: \d+ pages/);
    assert.match(said, /VM apB runs from snapshot ap-imported/);
    const list = await run(["snapshots", ...storeB], envB);
    assert.match(list.stdout, /\nap-imported +apA +256M +\d+\.\dM +\d+s\n/);
  } finally {
    await cleanUp({
      procs: [boot, imported],
      closers: [capA, capB, busA, busB],
      nats: [natsA, natsB],
      dir,
    });
  }
});
