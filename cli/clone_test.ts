import assert from "node:assert/strict";
import { cloneMacs } from "./clone.ts";
import { stableMac } from "../services/net/mod.ts";

Deno.test("cloneMacs: one MAC per clone and port, from the clone's name, none the snapshot's", () => {
  const snap = ["52:54:00:12:34:56", "52:54:00:12:34:57"];
  const macs = cloneMacs(snap, "web", 3);
  assert.deepEqual(macs[0], [stableMac("web1", 0), stableMac("web1", 1)]);
  assert.equal(macs.length, 3);
  const all = macs.flat();
  assert.equal(new Set([...all, ...snap]).size, all.length + snap.length);
  assert.deepEqual(cloneMacs(snap, "web", 3), macs, "the same names give the same MACs");
  assert.deepEqual(cloneMacs([], "web", 2), [[], []], "no ports, no MACs");
  // The snapshot's VM already has the MAC clone db1 would get: refused, naming both.
  assert.throws(
    () => cloneMacs([stableMac("db1", 0)], "db", 1),
    /db1's port 0 would get MAC 52:54:00:[0-9a-f:]+, as the snapshot's VM has: give another --name/,
  );
});
