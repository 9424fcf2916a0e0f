import assert from "node:assert/strict";
import { type LoadedHost, pickMove, REBALANCE_DEFAULTS } from "./rebalance.ts";
import type { VmRecord } from "./records.ts";

const host = (name: string, cores: number, vmCpu: Record<string, number>, up = true) => ({
  host: name,
  up,
  cores,
  ramMib: 1024,
  diskMib: 1024,
  cpuUse: 0,
  ledger: { vms: {} },
  vmCpu,
} as LoadedHost);

const vm = (name: string, ramMib: number, extra: Partial<VmRecord> = {}): VmRecord => ({
  name,
  state: "RUNNING",
  host: "h1",
  quota: { harts: 1, ramMib, diskMib: 0 },
  labels: {},
  antiAffinity: [],
  boot: { bios: "none", kernel: "k.elf" },
  consoleUrl: "",
  exitCode: 0,
  reason: "",
  createdMs: 0,
  updatedMs: 0,
  ...extra,
});

Deno.test("rebalance: the busiest movable VM goes to a calm host that fits", () => {
  const hosts = [
    host("h1", 2, { a: 1.0, b: 0.9 }),
    host("h2", 2, { c: 1.0 }), // load 0.5: not below half the threshold (0.45)
    host("h3", 2, {}),
  ];
  const vms = [vm("a", 256), vm("b", 128), vm("c", 64, { host: "h2" })];
  const m = pickMove(hosts, "h1", vms, new Map(), 1e9);
  assert.deepEqual(m, { vm: "a", from: "h1", to: "h3", load: 0.95 });
});

Deno.test("rebalance: cool-down, snapshots, non-running VMs and no room are skipped", () => {
  const hosts = [host("h1", 2, { a: 1.0, b: 0.5, s: 0.4 }), host("h2", 2, {})];
  const vms = [
    vm("a", 256),
    vm("b", 128),
    vm("s", 64, { boot: { bios: "", kernel: "", snapshot: "x" } }),
  ];
  const now = 1e9;
  // a moved a minute ago: b is next; s restores a snapshot and cannot be an incoming CPU.
  const m = pickMove(hosts, "h1", vms, new Map([["a", now - 60_000]]), now);
  assert.equal(m?.vm, "b");
  assert.equal(
    pickMove(hosts, "h1", [vm("a", 256, { state: "STOPPED" })], new Map(), now),
    undefined,
  );
  // No host fits the VM (2048 MiB asked, 1024 there).
  assert.equal(pickMove(hosts, "h1", [vm("a", 2048)], new Map(), now), undefined);
  // A target down is no target.
  assert.equal(
    pickMove([hosts[0], host("h2", 2, {}, false)], "h1", vms, new Map(), now),
    undefined,
  );
  assert.equal(REBALANCE_DEFAULTS.cpuThreshold, 0.9);
});
