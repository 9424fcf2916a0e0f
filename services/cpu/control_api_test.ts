import assert from "node:assert/strict";
import {
  BusError,
  controlApp,
  Registry,
  serveControlHttp,
  Status,
  vm as vmContract,
} from "@vmesh/bus";
import { stateName, type VmControl, vmControlApi } from "./control_api.ts";

const S = vmContract.State;

/** A VM stand-in that keeps the state machine of the control contract. */
class FakeVm implements VmControl {
  state: number = S.RUNNING;
  instret = 0n;
  calls: string[] = [];
  status(): vmContract.VmStatus {
    return {
      state: this.state,
      pc: 0xffff_ffff_8000_0000n,
      instret: this.instret,
      devices: [{ device: "disk0", kind: "block", subject: "vmesh.vm1.disk0", connected: true }],
    };
  }
  pause() {
    this.calls.push("pause");
    this.state = S.PAUSED;
  }
  resume() {
    this.calls.push("resume");
    this.state = S.RUNNING;
  }
  stop() {
    this.calls.push("stop");
    this.state = S.STOPPED;
  }
}

Deno.test("cpu control api: GET /vm status, POST pause/resume/stop, 409/405 on bad requests", async () => {
  const vm = new FakeVm();
  let t = 0;
  const app = controlApp({
    service: "vmesh-cpu",
    registry: new Registry(),
    routes: [{ path: "/vm", app: vmControlApi("vm1", vm, () => t) }],
  });
  const http = serveControlHttp(app, { port: 0 });
  try {
    const call = async (method: string, path: string) => {
      const r = await fetch(`${http.url}${path}`, { method });
      return { status: r.status, body: await r.json() };
    };
    let r = await call("GET", "/vm");
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      vm: "vm1",
      state: "RUNNING",
      pc: "0xffffffff80000000",
      instret: "0",
      mips: 0,
      mipsAverage: 0,
      devices: [{ device: "disk0", kind: "block", subject: "vmesh.vm1.disk0", connected: true }],
    });
    // 250 million instructions in one second of (injected) time: 250 MIPS.
    t = 1000;
    vm.instret = 250_000_000n;
    r = await call("GET", "/vm");
    assert.equal(r.body.instret, "250000000");
    assert.equal(r.body.mips, 250);
    assert.equal(r.body.mipsAverage, 250);

    r = await call("POST", "/vm/pause");
    assert.equal(r.status, 200);
    assert.equal(r.body.state, "PAUSED");
    r = await call("POST", "/vm/pause"); // already paused: no second call
    assert.equal(r.status, 200);
    r = await call("POST", "/vm/resume");
    assert.equal(r.body.state, "RUNNING");
    r = await call("POST", "/vm/stop");
    assert.equal(r.body.state, "STOPPED");
    assert.deepEqual(vm.calls, ["pause", "resume", "stop"]);

    r = await call("POST", "/vm/resume");
    assert.equal(r.status, 409);
    assert.match(r.body.error, /cannot resume a VM that is STOPPED/);
    r = await call("GET", "/vm/pause");
    assert.equal(r.status, 405);
    r = await call("POST", "/vm/reboot");
    assert.equal(r.status, 404);
    assert.deepEqual(vm.calls, ["pause", "resume", "stop"]);
  } finally {
    await http.close();
  }
  assert.equal(stateName(99), "UNKNOWN(99)");
});

Deno.test("cpu control api: POST /vm/snapshot passes the name, maps refusals to 409/400", async () => {
  const names: string[] = [];
  const vm = new FakeVm();
  const withSnapshot: VmControl = {
    status: () => vm.status(),
    pause: () => vm.pause(),
    resume: () => vm.resume(),
    stop: () => vm.stop(),
    snapshot: (name) => {
      names.push(name);
      if (name === "taken") {
        return Promise.reject(
          new BusError(Status.FAILED_PRECONDITION, "a snapshot named taken exists"),
        );
      }
      return Promise.resolve({
        name: name || "vm1-20261203T000000Z",
        pages: 65536,
        zeroPages: 60000,
        distinctPages: 5000,
        sentPages: 4000,
        sentBytes: 16_384_000n,
        pausedMs: 12.3456,
        totalMs: 900,
        vm: vm.status(),
      });
    },
  };
  const app = controlApp({
    service: "vmesh-cpu",
    registry: new Registry(),
    routes: [{ path: "/vm", app: vmControlApi("vm1", withSnapshot) }],
  });
  const http = serveControlHttp(app, { port: 0 });
  try {
    const post = async (body?: string) => {
      const r = await fetch(`${http.url}/vm/snapshot`, { method: "POST", body });
      return { status: r.status, body: await r.json() };
    };
    let r = await post(JSON.stringify({ name: "s1" }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      name: "s1",
      pages: 65536,
      zeroPages: 60000,
      distinctPages: 5000,
      sentPages: 4000,
      sentBytes: 16384000,
      pausedMs: 12.346,
      totalMs: 900,
    });
    r = await post();
    assert.equal(r.body.name, "vm1-20261203T000000Z");
    r = await post(JSON.stringify({ name: "taken" }));
    assert.equal(r.status, 409);
    assert.match(r.body.error, /exists/);
    r = await post("{not json");
    assert.equal(r.status, 400);
    assert.deepEqual(names, ["s1", "", "taken"]);
    const get = await fetch(`${http.url}/vm/snapshot`);
    assert.equal(get.status, 405);
    await get.body?.cancel();
  } finally {
    await http.close();
  }
});

Deno.test("cpu control api: POST /vm/migrate passes the request, maps refusals to 409/400", async () => {
  const reqs: vmContract.MigrateRequest[] = [];
  const vm = new FakeVm();
  const withMigrate: VmControl = {
    status: () => vm.status(),
    pause: () => vm.pause(),
    resume: () => vm.resume(),
    stop: () => vm.stop(),
    migrate: (req) => {
      reqs.push(req);
      if (req.to === "nowhere") {
        return Promise.reject(
          new BusError(Status.FAILED_PRECONDITION, "no incoming CPU service for VM vm1"),
        );
      }
      return Promise.resolve({
        host: req.to,
        rounds: 2,
        roundPages: [2900, 120],
        sentPages: 3040,
        sentBytes: 12_451_840n,
        finalPages: 20,
        downtimeMs: 9.87654,
        resumeMs: 9.5,
        captureMs: 2.5,
        targetLoadMs: 1.25,
        totalMs: 400,
        vm: vm.status(),
      });
    },
  };
  const app = controlApp({
    service: "vmesh-cpu",
    registry: new Registry(),
    routes: [{ path: "/vm", app: vmControlApi("vm1", withMigrate) }],
  });
  const http = serveControlHttp(app, { port: 0 });
  try {
    const post = async (body?: string) => {
      const r = await fetch(`${http.url}/vm/migrate`, { method: "POST", body });
      return { status: r.status, body: await r.json() };
    };
    let r = await post(JSON.stringify({ to: "h2", maxDowntimeMs: 20, verify: true }));
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, {
      host: "h2",
      rounds: 2,
      roundPages: [2900, 120],
      sentPages: 3040,
      sentBytes: 12451840,
      finalPages: 20,
      downtimeMs: 9.877,
      resumeMs: 9.5,
      captureMs: 2.5,
      targetLoadMs: 1.25,
      totalMs: 400,
    });
    r = await post(JSON.stringify({ to: "nowhere" }));
    assert.equal(r.status, 409);
    assert.match(r.body.error, /no incoming/);
    assert.equal((await post("{}")).status, 400);
    assert.equal((await post(JSON.stringify({ to: "h2", maxRounds: -1 }))).status, 400);
    assert.equal((await post("nope")).status, 400);
    assert.deepEqual(reqs, [
      { to: "h2", maxDowntimeMs: 20, maxRounds: 0, verify: true },
      { to: "nowhere", maxDowntimeMs: 0, maxRounds: 0, verify: false },
    ]);
    const get = await fetch(`${http.url}/vm/migrate`);
    assert.equal(get.status, 405);
    await get.body?.cancel();
  } finally {
    await http.close();
  }
});
