import assert from "node:assert/strict";
import { ReplayCache } from "./mod.ts";

const reply = (n: number) => ({ data: new Uint8Array(n) });

Deno.test("replay cache: a duplicate gets the first reply, even while pending", async () => {
  const c = new ReplayCache();
  let resolve!: (r: { data: Uint8Array }) => void;
  c.put("k", new Promise((r) => resolve = r));
  const dup = c.get("k");
  assert.ok(dup);
  resolve(reply(3));
  assert.equal((await dup)!.data.length, 3);
  assert.equal((await c.get("k"))!.data.length, 3);
});

Deno.test("replay cache: outcomes that resolve to undefined are not kept", async () => {
  const c = new ReplayCache();
  const p = Promise.resolve(undefined);
  c.put("k", p);
  await p;
  await Promise.resolve();
  assert.equal(c.get("k"), undefined);
});

Deno.test("replay cache: bounded by entries and bytes, oldest dropped first", async () => {
  const c = new ReplayCache({ maxEntries: 2, maxBytes: 10 });
  c.put("a", Promise.resolve(reply(1)));
  c.put("b", Promise.resolve(reply(1)));
  c.put("c", Promise.resolve(reply(1)));
  assert.equal(c.get("a"), undefined);
  assert.ok(c.get("b") && c.get("c"));
  const big = Promise.resolve(reply(20));
  c.put("d", big);
  await big;
  await Promise.resolve();
  assert.equal(c.size, 0);
});
