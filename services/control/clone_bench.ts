/**
 * Clone figures, measured once at module load (nothing asserts on time), with a real
 * nats-server -js, the memory service, two host agents and the control service as processes:
 * a Linux VM (the ./vmesh guest: OpenSBI, kernel, busybox initramfs, data disk; 256 MiB) booted
 * to its shell through REST, snapshotted with disk layers (`POST /api/vms/NAME/snapshot`), then
 * N clones (`POST /api/snapshots/SNAP/clone`, N from VMESH_BENCH_CLONES, default 4) placed on
 * the two hosts: the time until the POST answers (every clone's CPU service ready) and until
 * every clone answers `echo clone-$((6*7))` typed into its console. Against N
 * `qemu-system-riscv64 -M virt` booting the same images at once to the shell marker (QEMU has no
 * restore-many from one snapshot to compare with; a boot is what a clone saves).
 *
 * `deno bench -A services/control/clone_bench.ts`
 * @module
 */

import { connect, consoleMsgs, startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages, GUEST_SHELL_MARKER } from "../../guest/mod.ts";
import { diskImageMib } from "../agent/disk_size.ts";
import { benchService, qemuBootMany, stopAll } from "./bench_support.ts";
const log = (line: string) => console.log(`clone_bench: ${line}`);
const N = Number(Deno.env.get("VMESH_BENCH_CLONES") ?? "4");

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 300_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function measure(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-clone-bench-" });
  const nats = await startEmbeddedNats();
  const procs: Deno.ChildProcess[] = [];
  const bus = await connect({ url: nats.url, name: "clone-bench", log: () => {} });
  try {
    const g = await ensureGuestImages();
    procs.push((await benchService("memory", ["--store", `dir:${dir}/store`], nats.url)).child);
    for (const h of ["h1", "h2"]) {
      const a = await benchService("agent", [
        "--host",
        h,
        "--cores",
        "16",
        "--ram",
        "4096",
        "--dir",
        `${dir}/${h}`,
        "--interval",
        "500",
      ], nats.url);
      procs.push(a.child);
    }
    const ctl = await benchService("control", ["--http", "0"], nats.url);
    procs.push(ctl.child);
    const api = `${/ http (http:\/\/\S+)/.exec(ctl.ready)![1]}/api`;
    await until("2 hosts", async () => {
      const { hosts } = await (await fetch(`${api}/hosts`)).json();
      return hosts.length === 2 || undefined;
    });
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${api}${path}`, { method: "POST", body: JSON.stringify(body) });
      const text = await r.text();
      if (r.status !== 201) throw new Error(`${path}: ${r.status} ${text}`);
      return JSON.parse(text);
    };
    const logs = async (name: string) => await (await fetch(`${api}/vms/${name}/logs`)).text();
    await post("/vms", {
      name: "linux",
      quota: { harts: 1, ramMib: 256, diskMib: await diskImageMib(g.disk) },
      boot: {
        bios: g.firmware,
        kernel: g.kernel,
        initrd: g.initramfs,
        append: "console=ttyS0",
        disk: g.disk,
      },
    });
    await until(
      "linux at its shell",
      async () => (await logs("linux")).includes(GUEST_SHELL_MARKER) || undefined,
    );
    const s0 = performance.now();
    const snap = await post("/vms/linux/snapshot", { snapshot: "bench", diskLayers: true });
    const snapMs = performance.now() - s0;
    log(
      `snapshot with disk layers: ${(snapMs / 1000).toFixed(2)} s (guest held ${
        snap.pausedMs.toFixed(0)
      } ms, ` +
        `${snap.sentPages} of ${snap.pages} pages sent, layers ${
          (snap.layerBytes / 1048576).toFixed(1)
        } MiB)`,
    );
    const c0 = performance.now();
    const { vms } = await post("/snapshots/bench/clone", { count: N, prefix: "c" });
    const readyMs = performance.now() - c0;
    const hosts = vms.map((v: { host: string }) => v.host).join(",");
    await Promise.all(vms.map(async (v: { name: string }) => {
      const keys = bus.client({ vm: v.name, device: "console" }, consoleMsgs.ops, {
        timeoutMs: 5000,
      });
      await until(`${v.name} answers`, async () => {
        if ((await logs(v.name)).includes("clone-42")) return true;
        await keys.call("send", {
          seq: 0,
          data: new TextEncoder().encode("echo clone-$((6*7))\n"),
        });
        await new Promise((r) => setTimeout(r, 500));
        return undefined;
      });
    }));
    const answerMs = performance.now() - c0;
    const qemuMs = await qemuBootMany(g, N);
    log(
      `${N} clones (hosts ${hosts}): POST answered after ${
        (readyMs / 1000).toFixed(2)
      } s, all answered ` +
        `a typed echo after ${
          (answerMs / 1000).toFixed(2)
        } s; ${N} qemu-system-riscv64 booting to the shell ` +
        `at once, same run: ${(qemuMs / 1000).toFixed(2)} s; ratio ${
          (answerMs / qemuMs).toFixed(1)
        }x`,
    );
  } finally {
    await bus.close();
    await stopAll(procs);
    await nats.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

await measure();
Deno.bench("clone figures (measured once at load)", () => {});
