import assert from "node:assert/strict";
import { type Candidate, place, type PlacementRequest } from "./placement.ts";

const host = (
  host: string,
  ramMib = 1024,
  extra: Partial<Candidate> = {},
): Candidate => ({
  host,
  up: true,
  cores: 4,
  ramMib,
  diskMib: 10240,
  cpuUse: 0,
  ledger: { vms: {} },
  ...extra,
});
const vm = (
  name: string,
  ramMib = 128,
  extra: Partial<PlacementRequest> = {},
): PlacementRequest => ({
  name,
  quota: { harts: 1, ramMib, diskMib: 0 },
  labels: {},
  antiAffinity: [],
  ...extra,
});
const reserve = (c: Candidate, r: PlacementRequest) => {
  c.ledger.vms[r.name] = { quota: r.quota, labels: r.labels };
};

Deno.test("placement: the least loaded host wins; VMs spread over equal hosts", () => {
  const hosts = [host("b"), host("a")];
  const got: string[] = [];
  for (const n of ["v1", "v2", "v3", "v4"]) {
    const p = place(hosts, vm(n));
    assert.ok("host" in p);
    got.push(p.host);
    reserve(hosts.find((h) => h.host === p.host)!, vm(n));
  }
  // Ties go by name: a, then b (a has one VM more), and so on.
  assert.deepEqual(got, ["a", "b", "a", "b"]);
});

Deno.test("placement: dominant share counts RAM against the host's size", () => {
  const big = host("big", 4096);
  const small = host("small", 1024);
  const p = place([small, big], vm("v", 512));
  assert.ok("host" in p);
  assert.equal(p.host, "big");
});

Deno.test("placement: a quota beyond every host is refused with each host's reason", () => {
  const p = place([host("a"), host("b", 2048)], vm("huge", 8192));
  assert.ok("refusal" in p);
  assert.match(
    p.refusal,
    /no host fits huge \(1 harts, 8192 MiB RAM, 0 MiB disk\)/,
  );
  assert.match(p.refusal, /a: 1024 of 1024 MiB RAM unreserved, 8192 asked/);
  assert.match(p.refusal, /b: 2048 of 2048 MiB RAM unreserved, 8192 asked/);
});

Deno.test("placement: anti-affinity keeps two VMs with the same label value apart", () => {
  const a = host("a", 4096);
  const b = host("b", 1024);
  const web = { labels: { app: "web" }, antiAffinity: ["app"] };
  reserve(a, vm("web1", 128, web));
  const p = place([a, b], vm("web2", 128, web));
  assert.ok("host" in p);
  assert.equal(p.host, "b");
  reserve(b, vm("web2", 128, web));
  const q = place([a, b], vm("web3", 128, web));
  assert.ok("refusal" in q);
  assert.match(q.refusal, /anti-affinity: VM web1 there has app=web/);
  // Another value of the key may share a host.
  const r = place(
    [a, b],
    vm("db1", 128, { labels: { app: "db" }, antiAffinity: ["app"] }),
  );
  assert.ok("host" in r);
});

Deno.test("placement: a host that stopped announcing is never chosen; none up says so", () => {
  const p = place([host("a", 1024, { up: false }), host("b")], vm("v"));
  assert.ok("host" in p);
  assert.equal(p.host, "b");
  const none = place([], vm("v"));
  assert.ok("refusal" in none);
  assert.match(none.refusal, /no host is up/);
});

Deno.test("placement: a restarted VM keeps its host on a tie; its own reservation is not counted", () => {
  const a = host("a");
  const b = host("b");
  reserve(b, vm("v", 1024));
  // v's old reservation on b fills b, but it is v's own: b still fits, and is preferred.
  const p = place([a, b], vm("v", 1024, { preferHost: "b" }));
  assert.ok("host" in p);
  assert.equal(p.host, "b");
});
