/**
 * Control plane figures, measured once at module load (Deno.bench repeats its functions;
 * nothing asserts on time), with a real nats-server -js, one host agent and the control
 * service as processes:
 *
 * - create and boot 8 Linux VMs (the ./vmesh guest: OpenSBI, kernel, busybox initramfs; 256
 *   MiB, no disk or network) through the REST API at once, until every console log shows the
 *   guest's shell prompt marker; against 8 `qemu-system-riscv64 -M virt` booting the same
 *   images at once to the same marker: the ratio is printed, and each create's latency (the
 *   POST answers once the host's agent has the VM's CPU service ready);
 * - REST latency (p50, p99, max) of 100 concurrent requests, 5 rounds: `GET /api/vms` (8
 *   records), `GET /api/vms/:name`, `POST /api/vms` refused by placement (a quota no host has:
 *   the name claimed in KV, the ledger read, the record deleted), and `POST /api/vms` placed
 *   and sent to the agent (the name claimed, the ledger written by compare-and-set, the
 *   agent's start, which refuses 9 harts before starting any process, the ledger released,
 *   the record failed): the whole create path but the processes of a real VM, which 100 at
 *   once on this machine would measure its CPU rather than the API.
 *   QEMU has no API to compare these with.
 * @module
 */

import { startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages, GUEST_SHELL_MARKER } from "../../guest/mod.ts";
import { benchService, qemuBootMany, stopAll } from "./bench_support.ts";

const log = (line: string) => console.log(`control_bench: ${line}`);

function percentiles(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(1);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${s[s.length - 1].toFixed(1)} ms`;
}

/** 100 concurrent requests, 5 rounds: each request's latency. */
async function concurrent(
  fn: (i: number) => Promise<Response>,
  expect: number,
  body?: RegExp,
): Promise<number[]> {
  const out: number[] = [];
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const t0 = performance.now();
      const r = await fn(round * 100 + i);
      const text = await r.text();
      if (r.status !== expect) throw new Error(`status ${r.status}, expected ${expect}: ${text}`);
      if (body && !body.test(text)) throw new Error(`reply ${text} does not match ${body}`);
      out.push(performance.now() - t0);
    }));
  }
  return out;
}

async function measure(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-bench-" });
  const nats = await startEmbeddedNats();
  const procs: Deno.ChildProcess[] = [];
  try {
    const images = await ensureGuestImages();
    // Room for 8 Linux VMs plus 100 in-flight 9-hart creates: placement must not refuse them.
    const agent = await benchService("agent", [
      "--host",
      "h1",
      "--cores",
      "1000",
      "--ram",
      "16384",
      "--dir",
      `${dir}/h1`,
      "--interval",
      "500",
    ], nats.url);
    procs.push(agent.child);
    const ctl = await benchService("control", ["--http", "0"], nats.url);
    procs.push(ctl.child);
    const base = / http (http:\/\/\S+)/.exec(ctl.ready)![1];
    const api = `${base}/api`;
    // The control service knows the host once the agent announced itself.
    for (;;) {
      const { hosts } = await (await fetch(`${api}/hosts`)).json();
      if (hosts.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const create = (name: string, ramMib: number, harts = 1) =>
      fetch(`${api}/vms`, {
        method: "POST",
        body: JSON.stringify({
          name,
          quota: { harts, ramMib, diskMib: 0 },
          boot: {
            bios: images.firmware,
            kernel: images.kernel,
            initrd: images.initramfs,
            append: "console=ttyS0",
          },
        }),
      });

    const t0 = performance.now();
    const creates: number[] = [];
    await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const c0 = performance.now();
      const r = await create(`b${i}`, 256);
      if (r.status !== 201) throw new Error(`create b${i}: ${r.status} ${await r.text()}`);
      await r.body?.cancel();
      creates.push(performance.now() - c0);
      for (;;) {
        const text = await (await fetch(`${api}/vms/b${i}/logs`)).text();
        if (text.includes(GUEST_SHELL_MARKER)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    }));
    const vmesh8 = performance.now() - t0;
    log(`8 creates (POST until the CPU service is ready): ${percentiles(creates)}`);
    // The vmesh guests are stopped first: QEMU gets the machine as vmesh had it.
    for (let i = 0; i < 8; i++) {
      await (await fetch(`${api}/vms/b${i}/stop`, { method: "POST" })).body?.cancel();
    }
    const qemu8 = await qemuBootMany(images, 8);
    log(
      `create and boot 8 Linux VMs at once on one host to the shell prompt: vmesh ` +
        `${vmesh8.toFixed(0)} ms, qemu ${qemu8.toFixed(0)} ms = ${
          (vmesh8 / qemu8).toFixed(1)
        }x QEMU`,
    );

    const list = await concurrent(() => fetch(`${api}/vms`), 200);
    log(`GET /api/vms (8 records), 100 concurrent x 5: ${percentiles(list)}`);
    const inspect = await concurrent((i) => fetch(`${api}/vms/b${i % 8}`), 200);
    log(`GET /api/vms/NAME, 100 concurrent x 5: ${percentiles(inspect)}`);
    const refused = await concurrent((i) => create(`r${i}`, 1 << 20), 409);
    log(`POST /api/vms refused by placement, 100 concurrent x 5: ${percentiles(refused)}`);
    const placed = await concurrent((i) => create(`p${i}`, 64, 9), 409, /placed on h1, but/);
    log(
      `POST /api/vms placed, agent asked, its start refused (9 harts), 100 concurrent x 5: ` +
        percentiles(placed),
    );
  } finally {
    await stopAll(procs);
    await nats.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

await measure();

Deno.bench("control_bench (measured at load)", () => {});
