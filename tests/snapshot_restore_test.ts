/**
 * Snapshots of a real Linux guest with every service a process on a real nats-server: a
 * counter loop in the guest (each tick also written to the disk with fsync) is snapshotted
 * into the memory service (a directory store) with a frozen point of its disk, the source CPU
 * service is killed, and a new CPU service started with `--restore` under a new name, on a
 * copy of the disk point, carries the loop on (next numbers, the tmpfs file written before
 * the snapshot, uptime not gone back; the disk point holds the tick of the snapshot instant). A missing page, a corrupt or inconsistent manifest and an unknown name each
 * end the restoring CPU service with one clear line, before it serves anything.
 */
import assert from "node:assert/strict";
import { type Bus, memory, MEMORY_PREFIX, vm as vmContract } from "@vmesh/bus";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { ensureGuestImages } from "../guest/mod.ts";
import { startService, startTestBus } from "./services_harness.ts";
import { diskArgs, sha256File, startGuest } from "./guest_vm.ts";
import { diskTick, until } from "./snapshot_test_support.ts";

/** Every "tick N T" line of `text` as [N, uptime T]. */
function ticks(text: string): [number, number][] {
  return [...text.matchAll(/tick (\d+) before-snap ([\d.]+)\r?\n/g)].map((
    m,
  ) => [Number(m[1]), Number(m[2])]);
}

const show = (r: vmContract.SnapshotReply) =>
  JSON.stringify({ ...r, sentBytes: String(r.sentBytes), vm: undefined });

/** Whether anything answers `$SRV.PING.vmesh-cpu` for VM `vm`. */
async function cpuServes(bus: Bus, vm: string): Promise<boolean> {
  try {
    const it = await bus.nc.requestMany("$SRV.PING.vmesh-cpu", new Uint8Array(), {
      strategy: "timer",
      maxWait: 300,
    });
    for await (const m of it) {
      if (m.json<{ metadata?: Record<string, string> }>().metadata?.vm === vm) return true;
    }
  } catch { /* no responders */ }
  return false;
}

Deno.test("snapshot and restore: a counter in the Linux guest carries on in a new CPU service", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-snapshot-" });
  const tb = await startTestBus();
  const url = tb.nats.url;
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const store = `${dir}/store`;
    const mem = await startService("memory", ["--store", `dir:${store}`], url);
    stops.push(() => mem.stop());
    const diskA = await startService(
      "disk",
      diskArgs("snapA", "disk0", images.disk, `${dir}/a.cow`),
      url,
    );
    stops.push(() => diskA.stop());
    const loop = "echo before-snap > /tmp/f; i=0; while true; do i=$((i+1)); " +
      'echo "disk $i" | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null; ' +
      'echo "tick $i $(cat /tmp/f) $(cut -d" " -f1 /proc/uptime)"; sleep 1; done';
    const src = await startGuest(images, url, "snapA", ["disk0"], loop);
    stops.push(() => src.cpu.stop("SIGKILL"));
    await until("three ticks on the source", () => ticks(src.console.text).length >= 3);

    const before = ticks(src.console.text).at(-1)!;
    const ctl = tb.bus.client({ vm: "snapA", device: "ctl" }, vmContract.ops, {
      timeoutMs: 120_000,
    });
    const points = `${dir}/points`;
    const snap = await ctl.call("snapshot", { name: "snapA-1", diskDir: points });
    const after = ticks(src.console.text).at(-1)!;
    assert.equal(snap.name, "snapA-1");
    assert.equal(snap.pages, 65536, "256 MiB of 4 KiB pages");
    assert.ok(snap.zeroPages > 0 && snap.distinctPages > 0, show(snap));
    assert.equal(snap.sentPages >= snap.distinctPages, true, "a first snapshot sends every page");
    assert.equal(snap.vm?.state, vmContract.State.RUNNING, "the source runs on");
    console.log(
      `snapshot of an idle 256 MiB guest: ${snap.distinctPages} distinct non-zero pages of ` +
        `${snap.pages}, ${snap.sentBytes} bytes sent, held ${snap.pausedMs.toFixed(1)} ms, ` +
        `total ${snap.totalMs.toFixed(0)} ms`,
    );
    // A second snapshot sends only the pages that changed; a name in use is refused.
    const snap2 = await ctl.call("snapshot", { name: "snapA-2", diskDir: points });
    assert.ok(snap2.sentPages < snap2.distinctPages / 2, show(snap2));
    console.log(
      `second snapshot: ${snap2.sentPages} of ${snap2.distinctPages} pages sent, ` +
        `${snap2.sentBytes} bytes, total ${snap2.totalMs.toFixed(0)} ms`,
    );
    await assert.rejects(() => ctl.call("snapshot", { name: "snapA-1" }), /exists already/);
    await src.cpu.stop("SIGKILL");

    // The manifest names the disk point: a read-only copy of the overlay at the snapshot.
    const { manifest: stored } = await tb.bus.request(
      { prefix: MEMORY_PREFIX },
      memory.ops.get_manifest,
      { name: "snapA-1" },
    );
    const point = stored!.disks![0];
    assert.equal(point.device, "disk0");
    assert.equal(point.frozen, true);
    assert.equal(point.backend, "cow");
    assert.equal(point.overlay, `${points}/snapA.disk0.snapA-1.cow`);
    assert.equal((await Deno.stat(point.overlay)).mode! & 0o222, 0, "the point is read-only");
    const pointTick = await diskTick(point.overlay);
    assert.ok(pointTick >= before[0] && pointTick <= after[0], `point tick ${pointTick}`);
    assert.ok(await diskTick(`${dir}/a.cow`) > pointTick, "the live disk went on without it");
    const pointSha = await sha256File(point.overlay);

    // Restore under a new name, on its own copy of the disk point.
    await Deno.copyFile(point.overlay, `${dir}/b.cow`);
    await Deno.chmod(`${dir}/b.cow`, 0o644);
    const diskB = await startService(
      "disk",
      diskArgs("snapB", "disk0", point.image, `${dir}/b.cow`),
      url,
    );
    stops.push(() => diskB.stop());
    const cap = new ConsoleCapture(tb.bus, "snapB");
    stops.push(() => Promise.resolve(cap.close()));
    const t0 = performance.now();
    const restored = await startService("cpu", ["--vm", "snapB", "--restore", "snapA-1"], url);
    console.log(
      `restore: CPU service started, snapshot fetched and checked, serving after ` +
        `${(performance.now() - t0).toFixed(0)} ms`,
    );
    stops.push(() => restored.stop("SIGKILL"));
    assert.match(restored.ready, /restored=snapA-1/);
    await until("two ticks on the restored VM", () => ticks(cap.text).length >= 2);
    const got = ticks(cap.text);
    assert.doesNotMatch(cap.text, /Linux version|OpenSBI/, "no reboot: the guest carried on");
    assert.ok(
      got[0][0] > before[0] && got[0][0] <= after[0] + 1,
      `first restored tick ${got[0][0]}: after ${before[0]}, at most ${after[0] + 1}`,
    );
    for (let i = 1; i < got.length; i++) assert.equal(got[i][0], got[i - 1][0] + 1);
    assert.ok(got[0][1] >= before[1], `uptime ${got[0][1]} went back from ${before[1]}`);
    assert.ok(got[0][1] < after[1] + 30, `uptime ${got[0][1]} jumped from ${after[1]}`);
    // The disk point is the disk at the instant of the RAM: the tick being run, or the one before.
    assert.ok(
      pointTick === got[0][0] || pointTick === got[0][0] - 1,
      `disk point at tick ${pointTick}, restored guest at ${got[0][0]}`,
    );
    await until("the restored guest writing its disk", async () => {
      return await diskTick(`${dir}/b.cow`).catch(() => 0) > got[0][0];
    });
    assert.equal(await sha256File(point.overlay), pointSha, "the point never changes");
    const status = await tb.bus.request({ vm: "snapB", device: "ctl" }, vmContract.ops.status, {});
    assert.equal(status.state, vmContract.State.RUNNING);
    await restored.stop("SIGKILL");

    // Failures: one line, exit 1, nothing served.
    const failRestore = async (name: string, vm: string, why: RegExp) => {
      await assert.rejects(
        () => startService("cpu", ["--vm", vm, "--restore", name], url),
        (e: Error) => {
          assert.match(e.message, /exited with 1 before ready/);
          assert.match(e.message, why);
          return true;
        },
      );
      assert.equal(await cpuServes(tb.bus, vm), false, `${vm} must not serve`);
    };
    await failRestore("nosuch", "snapC", /no snapshot nosuch on the memory service/);

    await Deno.writeFile(`${store}/manifests/corrupt`, new Uint8Array([0xff, 0xff, 0xff]));
    await failRestore("corrupt", "snapC", /cannot restore corrupt: .*corrupt/);

    const { manifest } = await tb.bus.request(
      { prefix: MEMORY_PREFIX },
      memory.ops.get_manifest,
      { name: "snapA-1" },
    );
    await tb.bus.request({ prefix: MEMORY_PREFIX }, memory.ops.put_manifest, {
      name: "short-index",
      manifest: { ...manifest!, pageIndex: manifest!.pageIndex!.slice(1) },
    });
    await failRestore("short-index", "snapC", /bad manifest: 31 index pages for 65536 RAM pages/);

    // Drop one stored RAM page (not an index or image page) from the store.
    const index = await tb.bus.request({ prefix: MEMORY_PREFIX }, memory.ops.get_page, {
      hash: manifest!.pageIndex![0],
    });
    const imagePages = new Set((manifest!.images ?? []).flatMap((i) => i.pages));
    let victim = "";
    for (let p = 0; p < index.data.length / 32 && !victim; p++) {
      const h = [...index.data.subarray(p * 32, p * 32 + 32)].map((b) =>
        b.toString(16).padStart(2, "0")
      ).join("");
      if (!/^0+$/.test(h) && !imagePages.has(h)) victim = h;
    }
    await Deno.remove(`${store}/pages/${victim.slice(0, 2)}/${victim}`);
    await failRestore(
      "snapA-1",
      "snapC",
      new RegExp(`page ${victim} \\(RAM page \\d+ at 0x[0-9a-f]+ of snapA-1\\) is missing`),
    );
  } finally {
    for (const s of stops.reverse()) await s().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
