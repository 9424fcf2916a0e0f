/**
 * Control plane figures, measured once at module load (Deno.bench repeats its functions;
 * nothing asserts on time), with a real nats-server -js, one host agent and the control
 * service as processes:
 *
 * - create and boot 8 VMs through the REST API at once (a bare-metal guest that prints a line
 *   and idles), until every console log has the line; against 8 `qemu-system-riscv64 -M virt
 *   -bios none` booting the same ELF at once, until each printed it: the ratio is printed;
 * - REST latency (p50, p99, max) of 100 concurrent `GET /api/vms` (8 records), `GET
 *   /api/vms/:name`, and `POST /api/vms` refused by placement (a quota no host has: the
 *   claim of the name in KV, the ledger reads and the release, without starting processes).
 *   QEMU has no API to compare these with.
 * @module
 */

import { startEmbeddedNats } from "@vmesh/bus";
import { buildIdleGuest, IDLE_GUEST_LINE } from "../../tests/bare_metal_elf.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const log = (line: string) => console.log(`control_bench: ${line}`);

/** Spawns a service and waits for its ready line; returns the process and that line. */
async function service(name: string, args: string[], natsUrl: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}services/${name}/main.ts`, ...args],
    env: { NATS_URL: natsUrl, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(" ready: ")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`${name} exited before ready: ${text}`);
    text += value;
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })().catch(() => {});
  return { child, ready: text };
}

function percentiles(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))].toFixed(1);
  return `p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${s[s.length - 1].toFixed(1)} ms`;
}

/** 100 concurrent requests, 5 rounds: each request's latency. */
async function concurrent(fn: (i: number) => Promise<Response>, expect: number): Promise<number[]> {
  const out: number[] = [];
  for (let round = 0; round < 5; round++) {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => {
      const t0 = performance.now();
      const r = await fn(round * 100 + i);
      await r.body?.cancel();
      if (r.status !== expect) throw new Error(`status ${r.status}, expected ${expect}`);
      out.push(performance.now() - t0);
    }));
  }
  return out;
}

async function qemuBoot8(kernel: string): Promise<number> {
  const t0 = performance.now();
  const runs = Array.from({ length: 8 }, async () => {
    const child = new Deno.Command("qemu-system-riscv64", {
      args: ["-M", "virt", "-m", "128M", "-bios", "none", "-kernel", kernel, "-nographic"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const r = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes(IDLE_GUEST_LINE)) {
      const { value, done } = await r.read();
      if (done) throw new Error(`qemu ended: ${text}`);
      text += value;
    }
    const at = performance.now();
    child.kill("SIGKILL");
    await child.status;
    return at;
  });
  const ends = await Promise.all(runs);
  return Math.max(...ends) - t0;
}

async function measure(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-bench-" });
  const nats = await startEmbeddedNats();
  const procs: Deno.ChildProcess[] = [];
  try {
    const kernel = await buildIdleGuest(dir);
    const agent = await service("agent", [
      "--host",
      "h1",
      "--cores",
      "16",
      "--ram",
      "4096",
      "--dir",
      `${dir}/h1`,
      "--interval",
      "500",
    ], nats.url);
    procs.push(agent.child);
    const ctl = await service("control", ["--http", "0"], nats.url);
    procs.push(ctl.child);
    const base = / http (http:\/\/\S+)/.exec(ctl.ready)![1];
    const api = `${base}/api`;
    // The control service knows the host once the agent announced itself.
    for (;;) {
      const { hosts } = await (await fetch(`${api}/hosts`)).json();
      if (hosts.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const create = (name: string, ramMib: number) =>
      fetch(`${api}/vms`, {
        method: "POST",
        body: JSON.stringify({
          name,
          quota: { harts: 1, ramMib, diskMib: 0 },
          boot: { bios: "none", kernel },
        }),
      });

    const t0 = performance.now();
    await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const r = await create(`b${i}`, 128);
      if (r.status !== 201) throw new Error(`create b${i}: ${r.status} ${await r.text()}`);
      await r.body?.cancel();
      for (;;) {
        const text = await (await fetch(`${api}/vms/b${i}/logs`)).text();
        if (text.includes(IDLE_GUEST_LINE)) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    }));
    const vmesh8 = performance.now() - t0;
    const qemu8 = await qemuBoot8(kernel);
    log(
      `create and boot 8 VMs at once on one host: vmesh ${vmesh8.toFixed(0)} ms, ` +
        `qemu ${qemu8.toFixed(0)} ms = ${(vmesh8 / qemu8).toFixed(1)}x QEMU`,
    );

    const list = await concurrent(() => fetch(`${api}/vms`), 200);
    log(`GET /api/vms (8 records), 100 concurrent x 5: ${percentiles(list)}`);
    const inspect = await concurrent((i) => fetch(`${api}/vms/b${i % 8}`), 200);
    log(`GET /api/vms/NAME, 100 concurrent x 5: ${percentiles(inspect)}`);
    const refused = await concurrent((i) => create(`r${i}`, 1 << 20), 409);
    log(`POST /api/vms refused by placement, 100 concurrent x 5: ${percentiles(refused)}`);
  } finally {
    for (const p of procs.reverse()) {
      try {
        p.kill("SIGTERM");
      } catch { /* gone */ }
      await p.status;
    }
    await nats.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

await measure();

Deno.bench("control_bench (measured at load)", () => {});
