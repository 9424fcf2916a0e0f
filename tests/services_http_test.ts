// Every device service's `--http` control endpoint: /healthz answers, /metrics counts the
// bus requests the service served, unknown routes get JSON 404s; the CPU service's /vm
// REST API pauses, resumes and stops a booting Linux guest.
import assert from "node:assert/strict";
import { block } from "@vmesh/bus";
import { ensureGuestImages, imageArgs } from "../guest/mod.ts";
import { ops as consoleOps } from "../services/console/mod.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

/** The control URL a service logs (`<service> http: URL`), once it has logged it. */
async function httpUrl(p: ServiceProcess): Promise<string> {
  for (;;) {
    const url = p.log.map((l) => / http: (http:\/\/\S+)/.exec(l)?.[1]).find((u) => u);
    if (url) return url;
    const gone = await Promise.race([
      p.exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 20)),
    ]);
    if (gone) assert.fail(`exited without an http line:\n${p.log.join("\n")}`);
  }
}

async function metricValue(url: string, line: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.split("\n").find((x) => x.startsWith(line + " "));
  assert.ok(m, `no ${line} in\n${text}`);
  return Number(m.slice(line.length + 1));
}

Deno.test("services --http: /healthz, /metrics with served requests, JSON 404", async () => {
  const tb = await startTestBus();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-http-" });
  const procs: ServiceProcess[] = [];
  try {
    await Deno.writeFile(`${dir}/d.img`, new Uint8Array(64 * 1024));
    const start = async (name: string, args: string[]) => {
      const p = await startService(name, [...args, "--http", "0"], tb.nats.url);
      procs.push(p);
      return p;
    };
    const disk = await start("disk", ["--vm", "vmH", "--image", `${dir}/d.img`]);
    const cons = await start("console", ["--vm", "vmH", "--backend", `log:${dir}/c.log`]);
    const sw = await start("net", ["--switch", "swH"]);
    const mem = await start("memory", ["--store", `dir:${dir}/pages`]);

    await tb.bus.request({ vm: "vmH", device: "disk0" }, block.ops.info, {});
    await tb.bus.request({ vm: "vmH", device: "console" }, consoleOps.send, {
      seq: 0,
      data: new TextEncoder().encode("x"),
    });
    for (
      const [p, service] of [
        [disk, "vmesh-disk"],
        [cons, "vmesh-console"],
        [sw, "vmesh-net"],
        [mem, "vmesh-memory"],
      ] as const
    ) {
      const url = await httpUrl(p);
      const h = await fetch(`${url}/healthz`);
      assert.equal(h.status, 200);
      const body = await h.json();
      assert.equal(body.service, service);
      assert.equal(body.ok, true);
      const nf = await fetch(`${url}/nope`);
      assert.equal(nf.status, 404);
      assert.match((await nf.json()).error, /no route/);
      const metrics = await fetch(`${url}/metrics`);
      assert.match(metrics.headers.get("content-type") ?? "", /version=0\.0\.4/);
      assert.match(await metrics.text(), /^# TYPE process_resident_memory_bytes gauge$/m);
    }
    const l = (svc: string, vm: string, dev: string, op: string) =>
      `vmesh_bus_requests_total{service="${svc}",vm="${vm}",device="${dev}",op="${op}",status="OK"}`;
    assert.equal(
      await metricValue(await httpUrl(disk), l("vmesh-disk", "vmH", "disk0", "info")),
      1,
    );
    assert.equal(
      await metricValue(await httpUrl(cons), l("vmesh-console", "vmH", "console", "send")),
      1,
    );
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cpu --http: GET /vm reports a running Linux guest; pause, resume and stop over REST", async () => {
  const images = await ensureGuestImages();
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    const cpu = await startService("cpu", [
      "--vm",
      "vmR",
      ...imageArgs(images),
      "--append",
      "console=ttyS0",
      "--http",
      "0",
    ], tb.nats.url);
    procs.push(cpu);
    const url = await httpUrl(cpu);
    const vm = async (method = "GET", path = "") => {
      const r = await fetch(`${url}/vm${path}`, { method }).catch((e) => {
        throw new Error(`${method} /vm${path}: ${e.message}\n${cpu.log.join("\n")}`);
      });
      return { status: r.status, body: await r.json() };
    };
    let r = await vm();
    assert.equal(r.status, 200);
    assert.equal(r.body.vm, "vmR");
    assert.equal(r.body.state, "RUNNING");
    assert.match(r.body.pc, /^0x[0-9a-f]{16}$/);
    r = await vm("POST", "/pause");
    assert.equal(r.body.state, "PAUSED");
    const frozen = (await vm()).body.instret;
    assert.equal((await vm()).body.instret, frozen, "a paused hart retires nothing");
    r = await vm("POST", "/resume");
    assert.equal(r.body.state, "RUNNING");
    r = await vm("POST", "/stop");
    assert.equal(r.status, 200);
    assert.equal(await cpu.exited, 0, cpu.log.join("\n"));
  } finally {
    for (const p of procs.reverse()) await p.stop();
    await tb.close();
  }
});
