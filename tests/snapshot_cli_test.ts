/**
 * The snapshot commands as a user runs them, on a real nats-server with `./vmesh boot`'s
 * processes and a real Linux guest: `./vmesh snapshot VM --name N` prints what it stored,
 * `./vmesh snapshots` lists it with VM, RAM, size and age, `./vmesh restore N --name NEW`
 * runs the guest on from it on a copy of the disk point (the counter continues in NEW's
 * console log), `./vmesh clone N --count 2` runs two VMs from it, each writing its own disk
 * copy (one stopped, the other writes on; the point stays as it was), and
 * `./vmesh snapshots --rm N` removes it; a restore of an unknown name is one clear line.
 */
import assert from "node:assert/strict";
import { connect, startEmbeddedNats, vm as vmContract } from "@vmesh/bus";
import { sha256File } from "./guest_vm.ts";
import { diskTick, run, until, vmesh } from "./snapshot_test_support.ts";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { ensureGuestImages } from "../guest/mod.ts";

const tickNumbers = (text: string) =>
  [...text.matchAll(/tick (\d+) kept\r?\n/g)].map((m) => Number(m[1]));

Deno.test("./vmesh snapshot, snapshots, restore, clone, snapshots --rm", async () => {
  await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-snapshot-cli-" });
  const nats = await startEmbeddedNats();
  const env = { NATS_URL: nats.url };
  const bus = await connect({ url: nats.url, name: "test-snapshot-cli", log: () => {} });
  const store = ["--store", `dir:${dir}/store`];
  const cap = new ConsoleCapture(bus, "cliA");
  let boot: Deno.ChildProcess | undefined;
  let restore: Deno.ChildProcess | undefined;
  try {
    boot = vmesh([
      "boot",
      "--name",
      "cliA",
      "--",
      "echo kept > /tmp/f; i=0; while true; do i=$((i+1)); " +
      'echo "disk $i" | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null; ' +
      'echo "tick $i $(cat /tmp/f)"; sleep 1; done',
    ], env);
    await until("ticks from the booted guest", () => tickNumbers(cap.text).length >= 2);

    const before = Math.max(...tickNumbers(cap.text));
    const snap = await run(
      ["snapshot", "cliA", "--name", "cli-1", "--disk-dir", `${dir}/points`, ...store],
      env,
    );
    assert.equal(snap.code, 0, snap.stderr);
    assert.match(snap.stdout, /^cli-1: 65536 pages, \d+ zero, \d+ distinct .* guest held \d+ ms/);
    const after = Math.max(...tickNumbers(cap.text));
    const pointPath = `${dir}/points/cliA.disk0.cli-1.cow`;
    const pointSha = await sha256File(pointPath);

    const list = await run(["snapshots", ...store], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME +VM +RAM +SIZE +AGE\n/);
    assert.match(list.stdout, /\ncli-1 +cliA +256M +\d+\.\dM +\d+s\n/);

    boot.kill("SIGTERM");
    await boot.output();
    boot = undefined;

    const missing = await run(["restore", "nosuch", "--name", "cliB", ...store], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no snapshot nosuch .*\(\.\/vmesh snapshots lists them\)/);

    const log = `${dir}/cliB.log`;
    restore = vmesh(
      ["restore", "cli-1", "--name", "cliB", "--console", `log:${log}`, ...store],
      env,
    );
    const text = async () => await Deno.readTextFile(log).catch(() => "");
    await until(
      "two ticks from the restored guest",
      async () => tickNumbers(await text()).length >= 2,
    );
    const got = tickNumbers(await text());
    assert.ok(got[0] > before && got[0] <= after + 1, `restored at ${got[0]}: ${before}..${after}`);
    assert.doesNotMatch(await text(), /Linux version/);
    restore.kill("SIGTERM");
    const r = await restore.output();
    restore = undefined;
    assert.equal(r.code, 143, new TextDecoder().decode(r.stderr));
    const said = new TextDecoder().decode(r.stderr);
    assert.match(said, /VM cliB runs from snapshot cli-1/);
    assert.match(
      said,
      /disk disk0: .* with a copy of the snapshot's point .*cliA\.disk0\.cli-1\.cow/,
    );

    // Two clones, each on its own copy of the disk point: stopping one leaves the other.
    const clones = `${dir}/clones`;
    const clone = vmesh(
      ["clone", "cli-1", "--count", "2", "--name", "cl", "--run-dir", clones, ...store],
      env,
    );
    try {
      for (const vm of ["cl1", "cl2"]) {
        await until(
          `two ticks from ${vm}`,
          async () =>
            tickNumbers(await Deno.readTextFile(`${clones}/${vm}.log`).catch(() => "")).length >= 2,
        );
      }
      const [t1, t2] = [
        await diskTick(`${clones}/cl1.disk0.cow`),
        await diskTick(`${clones}/cl2.disk0.cow`),
      ];
      assert.ok(t1 > before && t2 > before, `clone disks at ${t1}, ${t2}`);
      await bus.request({ vm: "cl2", device: "ctl" }, vmContract.ops.stop, {});
      await new Promise((r) => setTimeout(r, 500));
      const stopped = await diskTick(`${clones}/cl2.disk0.cow`);
      await until(
        "cl1 writing on",
        async () => await diskTick(`${clones}/cl1.disk0.cow`) > stopped + 2,
      );
      assert.equal(
        await diskTick(`${clones}/cl2.disk0.cow`),
        stopped,
        "cl2 sees none of cl1's writes",
      );
      assert.equal(await sha256File(pointPath), pointSha, "the point never changes");
    } finally {
      clone.kill("SIGTERM");
      const c = await clone.output();
      assert.equal(c.code, 143, new TextDecoder().decode(c.stderr));
    }

    const rm = await run(["snapshots", "--rm", "cli-1", ...store], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.doesNotMatch((await run(["snapshots", ...store], env)).stdout, /cli-1/);
  } finally {
    cap.close();
    for (const c of [boot, restore]) {
      if (!c) continue;
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.output().catch(() => {});
    }
    await bus.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
