/**
 * Live migration of a real Linux guest between two CPU service processes on one nats-server:
 * the guest counts on its console and writes each tick to its disk with fsync; a second CPU
 * service started with `--incoming --host h2` and the same flags takes the VM over through
 * `vmesh.<vm>.ctl.migrate` (RAM checked by SHA-256 on the target), the source exits, and the
 * counter, the console stream and the disk writes go on with no tick lost or repeated. A
 * migration to a host with no incoming service, or to the wrong host, is refused and the guest
 * runs on where it was.
 */
import assert from "node:assert/strict";
import { consoleMsgs, vm as vmContract } from "@vmesh/bus";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { ensureGuestImages } from "../guest/mod.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";
import { diskArgs, linuxCpuArgs } from "./guest_vm.ts";
import { diskTick, until } from "./snapshot_test_support.ts";

/** The tick numbers on the console, in order. */
export function ticks(text: string): number[] {
  return [...text.matchAll(/tick (\d+)\r?\n/g)].map((m) => Number(m[1]));
}

/**
 * The guest's loop: a tick a fifth of a second, each also written to sector 1 with fsync; in
 * the background a writer rewriting 4 MiB of tmpfs with random data (pages dirtied all along,
 * by the translator's and interpreter's stores and by page-cache copies) and a reader echoing
 * each line typed on the console as "typed LINE".
 */
export const LOOP = "(while true; do dd if=/dev/urandom of=/tmp/x bs=64k count=64 2>/dev/null; " +
  'done) & (while read l; do echo "typed $l"; done </dev/ttyS0) & i=0; while true; do i=$((i+1)); ' +
  'echo "disk $i" | dd of=/dev/vda bs=512 seek=1 conv=fsync 2>/dev/null; ' +
  'echo "tick $i"; sleep 0.2; done';

/** The CPU service arguments of the test VM (source and target alike). */
export function cpuArgs(images: Awaited<ReturnType<typeof ensureGuestImages>>, vm: string) {
  return [...linuxCpuArgs(images, vm, LOOP), "--disk", "disk0"];
}

/** A migration's figures in one line. */
export function show(r: vmContract.MigrateReply): string {
  return `${r.rounds} rounds [${r.roundPages}], ${r.sentPages} pages, ${r.sentBytes} bytes, ` +
    `${r.finalPages} pages paused, downtime ${r.downtimeMs.toFixed(1)} ms (resume ` +
    `${r.resumeMs.toFixed(1)}: capture ${r.captureMs.toFixed(1)}, target load ` +
    `${r.targetLoadMs.toFixed(1)}), total ${r.totalMs.toFixed(0)} ms`;
}

/** Asserts `t` counts 1, 2, 3, ... with nothing missing or repeated. */
export function assertConsecutive(t: number[]): void {
  t.forEach((n, i) => assert.equal(n, i + 1, `tick ${i + 1} is ${n}: ${t.join(" ")}`));
}

Deno.test("live migration: a Linux guest moves to another CPU service and counts on", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-migrate-" });
  const tb = await startTestBus();
  const url = tb.nats.url;
  const procs: ServiceProcess[] = [];
  const cap = new ConsoleCapture(tb.bus, "mig");
  try {
    const disk = await startService(
      "disk",
      diskArgs("mig", "disk0", images.disk, `${dir}/a.cow`),
      url,
    );
    procs.push(disk);
    const con = await startService("console", [
      "--vm",
      "mig",
      "--backend",
      `log:${dir}/console.log`,
    ], url);
    procs.push(con);
    const src = await startService("cpu", cpuArgs(images, "mig"), url);
    procs.push(src);
    await until("three ticks on the source", () => ticks(cap.text).length >= 3, 120_000);
    const ctl = tb.bus.client({ vm: "mig", device: "ctl" }, vmContract.ops, {
      timeoutMs: 60_000,
      retries: 0,
    });

    // No incoming service: refused, the guest runs on here.
    await assert.rejects(() => ctl.call("migrate", { to: "h2" }), /no incoming CPU service/);
    // Another machine (RAM size) is refused before anything is sent.
    const other = await startService(
      "cpu",
      [...cpuArgs(images, "mig"), "--memory", "128M", "--incoming", "--host", "h4"],
      url,
    );
    procs.push(other);
    await assert.rejects(
      () => ctl.call("migrate", { to: "h4" }),
      /machine differs from this one: ramSize/,
    );
    await other.stop("SIGKILL");
    // A target that dies during the pre-copy: the migration fails, the guest runs on here.
    const doomed = await startService(
      "cpu",
      [...cpuArgs(images, "mig"), "--incoming", "--host", "h5"],
      url,
      { env: { VMESH_MIGRATE_DEBUG: "1" } },
    );
    procs.push(doomed);
    const failing = ctl.call("migrate", { to: "h5" });
    await until("the first pages at h5", () => doomed.log.some((l) => /pages of round 0/.test(l)));
    await doomed.stop("SIGKILL");
    await assert.rejects(() => failing, (e: Error) => {
      console.log(`migration to a target killed at its first pages: ${e.message}`);
      return /failed, the VM runs on here/.test(e.message);
    });
    const tgt = await startService(
      "cpu",
      [...cpuArgs(images, "mig"), "--incoming", "--host", "h2", "--http", "0"],
      url,
    );
    procs.push(tgt);
    assert.match(tgt.ready, /incoming ready: vmesh\.mig\.incoming host=h2/);
    await assert.rejects(() => ctl.call("migrate", { to: "h3" }), /on host h2, not h3/);
    const n0 = ticks(cap.text).length;
    await until("the source to count on", () => ticks(cap.text).length >= n0 + 2, 30_000);

    const before = ticks(cap.text).at(-1)!;
    // Console input typed all through the migration reaches the guest once, in order.
    let typing = true, typed = 0;
    const typist = (async () => {
      while (typing || typed < 5) {
        const data = new TextEncoder().encode(`k${++typed}\n`);
        await tb.bus.request({ vm: "mig", device: "console" }, consoleMsgs.ops.send, {
          seq: 0,
          data,
        });
        await new Promise((r) => setTimeout(r, 25));
      }
    })();
    const r = await ctl.call("migrate", { to: "h2", verify: true });
    typing = false;
    await typist;
    console.log(`migration with the RAM check: ${show(r)}`);
    assert.equal(r.host, "h2");
    assert.ok(r.rounds >= 1 && r.sentPages > 1000, JSON.stringify({ ...r, sentBytes: 0, vm: 0 }));
    assert.equal(await src.exited, 0, "the source exits once the target runs");
    assert.ok(src.log.some((l) => /migrated to host h2/.test(l)), src.log.join("\n"));
    await until(
      "the target's ready line",
      () => tgt.log.some((l) => /ready: .*migrated-in/.test(l)),
    );

    // The counter goes on from the target: nothing lost, nothing twice.
    await until(
      "five more ticks on the target",
      () => (ticks(cap.text).at(-1) ?? 0) >= before + 5,
      60_000,
    );
    assertConsecutive(ticks(cap.text));
    const typedLines = () => [...cap.text.matchAll(/typed k(\d+)\r?\n/g)].map((m) => Number(m[1]));
    await until("the guest to read every typed line", () => typedLines().at(-1) === typed, 30_000)
      .catch((e) => {
        throw new Error(`${e.message}: typed ${typed}, read ${typedLines().join(" ")}`);
      });
    const got = typedLines();
    assert.deepEqual(got, Array.from({ length: typed }, (_, i) => i + 1), "each typed line once");
    console.log(`${typed} lines typed during the migration, all read once`);
    // And back to a third CPU service, without the RAM check (the downtime as it is).
    const back = await startService(
      "cpu",
      [...cpuArgs(images, "mig"), "--incoming", "--host", "h1"],
      url,
    );
    procs.push(back);
    const mid = ticks(cap.text).at(-1)!;
    // Through the REST API of the CPU service now running the VM (its --http came up with it).
    await until("h2's http line", () => tgt.log.some((l) => /vmesh-cpu http: /.test(l)));
    const api = /vmesh-cpu http: (\S+)/.exec(tgt.log.find((l) => /vmesh-cpu http: /.test(l))!)![1];
    const res = await fetch(`${api}/vm/migrate`, {
      method: "POST",
      body: JSON.stringify({ to: "h1" }),
    });
    const r2 = await res.json();
    assert.equal(res.status, 200, JSON.stringify(r2));
    assert.equal(r2.host, "h1");
    console.log(`migration back (POST /vm/migrate): ${JSON.stringify(r2)}`);
    assert.equal(await tgt.exited, 0);
    await until(
      "three more ticks after the second migration",
      () => (ticks(cap.text).at(-1) ?? 0) >= mid + 3,
      60_000,
    );
    assertConsecutive(ticks(cap.text));
    const st = await ctl.call("status", {});
    assert.equal(st.state, vmContract.State.RUNNING);
    assert.ok(
      st.devices.find((d) => d.device === "disk0")?.connected,
      "the target reaches the disk",
    );
    // The disk writes go on too (the overlay has the target's ticks).
    const t = ticks(cap.text).at(-1)!;
    await until(
      "the disk to hold a tick of the target",
      async () => await diskTick(`${dir}/a.cow`) > before + 1,
      30_000,
    );
    assert.ok(await diskTick(`${dir}/a.cow`) <= t + 2);
    assert.ok(!con.log.some((l) => /lost \d+ bytes/.test(l)), con.log.join("\n"));
  } finally {
    cap.close();
    for (const p of procs.reverse()) await p.stop("SIGKILL");
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
