import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  block,
  BusError,
  busHealth,
  connect,
  controlApp,
  HttpError,
  parseHttpListen,
  Registry,
  serveControlHttp,
  Status,
} from "./mod.ts";

Deno.test("control http: /healthz, /metrics, JSON errors for bad routes and failing handlers", async () => {
  let healthy = true;
  const extra = new Hono();
  extra.get("/", (c) => c.json({ hello: "world" }));
  extra.post("/bad", () => {
    throw new HttpError(409, "not now");
  });
  extra.get("/boom", () => {
    throw new Error("kaput");
  });
  const registry = new Registry();
  registry.counter("t_things_total", "Things.").inc();
  const app = controlApp({
    service: "vmesh-test",
    registry,
    health: () => {
      if (healthy === null) throw new Error("probe broke");
      return healthy ? { ok: true, detail: "fine" } : { ok: false, detail: "nats down" };
    },
    routes: [{ path: "/x", app: extra }],
  });
  const http = serveControlHttp(app, { port: 0 });
  try {
    assert.ok(http.port > 0);
    const get = async (path: string, init?: RequestInit) => {
      const r = await fetch(`${http.url}${path}`, init);
      return { status: r.status, type: r.headers.get("content-type") ?? "", text: await r.text() };
    };
    let r = await get("/healthz");
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.text), { service: "vmesh-test", ok: true, detail: "fine" });
    healthy = false;
    r = await get("/healthz");
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.text).detail, "nats down");
    healthy = null as unknown as boolean;
    r = await get("/healthz");
    assert.equal(r.status, 503);
    assert.match(JSON.parse(r.text).detail, /probe broke/);

    r = await get("/metrics");
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    assert.match(r.text, /^# TYPE t_things_total counter$/m);
    assert.match(r.text, /^t_things_total 1$/m);
    assert.match(r.text, /^process_resident_memory_bytes \d+$/m);

    for (
      const [path, init, status, msg] of [
        ["/nope", undefined, 404, /no route GET \/nope/],
        ["/metrics", { method: "POST", body: "x" }, 405, /use GET/],
        ["/healthz", { method: "DELETE" }, 405, /use GET/],
        ["/x/bad", { method: "POST" }, 409, /not now/],
        ["/x/boom", undefined, 500, /kaput/],
        ["/%ff%fe", undefined, 404, /no route/],
      ] as const
    ) {
      r = await get(path, init);
      assert.equal(r.status, status, `${path}: ${r.text}`);
      assert.match(r.type, /application\/json/);
      const body = JSON.parse(r.text);
      assert.equal(body.status, status);
      assert.match(body.error, msg);
    }
    assert.deepEqual(JSON.parse((await get("/x")).text), { hello: "world" });
  } finally {
    await http.close();
  }
});

Deno.test("control http: a port in use is one clear error; --http values parse", async () => {
  const http = serveControlHttp(controlApp({ service: "a", registry: new Registry() }), {
    port: 0,
  });
  try {
    assert.throws(
      () => serveControlHttp(controlApp({ service: "b", registry: new Registry() }), http),
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${http.port}`),
    );
  } finally {
    await http.close();
  }
  assert.equal(parseHttpListen(undefined), undefined);
  assert.equal(parseHttpListen("off"), undefined);
  assert.deepEqual(parseHttpListen("0"), { port: 0 });
  assert.deepEqual(parseHttpListen("0.0.0.0:9464"), { hostname: "0.0.0.0", port: 9464 });
  assert.deepEqual(parseHttpListen("[::1]:80"), { hostname: "::1", port: 80 });
  assert.throws(() => parseHttpListen("70000"), RangeError);
  assert.throws(() => parseHttpListen("abc"), RangeError);
});

Deno.test("control http: served bus requests are counted by op and status", async () => {
  const registry = new Registry();
  const bus = await connect({ name: "metrics-test", log: () => {} });
  const svc = await bus.serve({
    vm: "vmM",
    device: "disk0",
    name: "vmesh-metrics-test",
    version: "0.0.1",
    ops: block.ops,
    metrics: registry,
    handlers: {
      info: () => ({ sizeBytes: 4096, sectorSize: 512, readOnly: true, discard: false }),
      read: ({ length }) => ({ data: new Uint8Array(length) }),
      write: () => {
        throw new BusError(Status.READ_ONLY, "read-only");
      },
      flush: () => ({}),
      discard: () => ({}),
    },
  });
  const http = serveControlHttp(
    controlApp({ service: "vmesh-metrics-test", registry }),
    { port: 0 },
  );
  try {
    const disk = bus.client({ vm: "vmM", device: "disk0" }, block.ops);
    await disk.call("read", { offset: 0, length: 512 });
    await disk.call("read", { offset: 512, length: 512 });
    await assert.rejects(
      disk.call("write", { offset: 0, data: new Uint8Array(512) }, { retries: 0 }),
      BusError,
    );
    // A payload that does not decode, and an op nobody serves.
    await bus.nc.request("vmesh.vmM.disk0.read", new Uint8Array([0xff, 0xff, 0xff]));
    await bus.nc.request("vmesh.vmM.disk0.frobnicate", new Uint8Array(0));
    const text = await (await fetch(`${http.url}/metrics`)).text();
    const l = 'service="vmesh-metrics-test",vm="vmM",device="disk0"';
    const value = (line: string) => {
      const m = text.split("\n").find((x) => x.startsWith(line + " "));
      assert.ok(m, `no line ${line} in\n${text}`);
      return Number(m.slice(line.length + 1));
    };
    assert.equal(value(`vmesh_bus_requests_total{${l},op="read",status="OK"}`), 2);
    assert.equal(value(`vmesh_bus_requests_total{${l},op="read",status="MALFORMED"}`), 1);
    assert.equal(value(`vmesh_bus_requests_total{${l},op="write",status="READ_ONLY"}`), 1);
    assert.equal(value(`vmesh_bus_requests_total{${l},op="_unknown",status="UNKNOWN_OP"}`), 1);
    assert.equal(value(`vmesh_bus_errors_total{${l},op="write",status="READ_ONLY"}`), 1);
    assert.equal(value(`vmesh_bus_errors_total{${l},op="read",status="MALFORMED"}`), 1);
    assert.ok(value(`vmesh_bus_reply_bytes_total{${l},op="read"}`) >= 1024);
    assert.ok(value(`vmesh_bus_request_bytes_total{${l},op="read"}`) > 3);
    assert.equal(value(`vmesh_bus_request_duration_seconds_count{${l},op="read"}`), 3);
    assert.equal(value(`vmesh_bus_request_duration_seconds_bucket{${l},op="read",le="+Inf"}`), 3);
    assert.match(text, /^# TYPE vmesh_bus_request_duration_seconds histogram$/m);
  } finally {
    await http.close();
    await svc.stop();
    assert.deepEqual(busHealth(bus.nc, "disk0")(), { ok: true, detail: "disk0: serving" });
    await bus.close();
    assert.deepEqual(busHealth(bus.nc, "disk0")(), {
      ok: false,
      detail: "disk0: bus connection closed",
    });
  }
});
