import assert from "node:assert/strict";
import { VirtualSwitch } from "./switch.ts";
import { isMac, parseMac, stableMac } from "./mac.ts";

/** A frame from MAC `src` to MAC `dst` (colon form or last byte of 52:54:00:00:00:xx). */
function frame(dst: string | number, src: string | number, n = 60, tag = 0): Uint8Array {
  const mac = (m: string | number) =>
    typeof m === "number" ? new Uint8Array([0x52, 0x54, 0, 0, 0, m]) : parseMac(m);
  const f = new Uint8Array(Math.max(n, 14));
  f.set(mac(dst), 0);
  f.set(mac(src), 6);
  f.set([0x08, 0x00], 12);
  f.fill(tag, 14);
  return f.slice(0, n);
}

const BCAST = "ff:ff:ff:ff:ff:ff";

/** A switch whose ports record what they receive; `busy` ports refuse frames. */
function rig(opts: ConstructorParameters<typeof VirtualSwitch>[1] = {}) {
  let now = 1000;
  const sw = new VirtualSwitch("sw0", { now: () => now, ...opts });
  const got = new Map<string, Uint8Array[]>();
  const busy = new Set<string>();
  const join = (id: string, last: number) => {
    got.set(id, []);
    return sw.join(id, `52:54:00:00:00:${last.toString(16).padStart(2, "0")}`, (f) => {
      if (busy.has(id)) return false;
      got.get(id)!.push(f);
      return true;
    });
  };
  const count = () => Object.fromEntries([...got].map(([k, v]) => [k, v.length]));
  return { sw, got, busy, join, count, tick: (ms: number) => now += ms };
}

Deno.test("learn: known unicast goes to one port, broadcast and unknown flood", () => {
  const { sw, join, count } = rig();
  join("a", 1);
  join("b", 2);
  join("c", 3);
  // Join MACs are known at once: a → b reaches b only.
  assert.deepEqual(sw.input("a", frame(2, 1)).map((p) => p.id), ["b"]);
  // Broadcast and multicast flood to all but the ingress port.
  assert.deepEqual(sw.input("a", frame(BCAST, 1)).map((p) => p.id), ["b", "c"]);
  assert.deepEqual(sw.input("b", frame("01:00:5e:00:00:01", 2)).map((p) => p.id), ["a", "c"]);
  // Unknown unicast floods; a source seen behind c (another MAC) is learned there.
  assert.deepEqual(sw.input("a", frame(0x77, 1)).map((p) => p.id), ["b", "c"]);
  sw.input("c", frame(1, 0x77));
  assert.equal(sw.lookup("52:54:00:00:00:77"), "c");
  assert.deepEqual(sw.input("a", frame(0x77, 1)).map((p) => p.id), ["c"]);
  // A station that moves is learned on its new port.
  sw.input("b", frame(1, 0x77));
  assert.deepEqual(sw.input("a", frame(0x77, 1)).map((p) => p.id), ["b"]);
  // A frame for a MAC behind the ingress port goes nowhere (filtered).
  assert.deepEqual(sw.input("b", frame(0x77, 2)), []);
  assert.equal(sw.drops.filtered, 1);
  assert.deepEqual(count(), { a: 3, b: 4, c: 4 });
  assert.equal(sw.stats().txFrames, 11);
  // Duplicate MACs (two VMs with the same default): a frame to its own source MAC floods.
  assert.deepEqual(sw.input("a", frame(1, 1)).map((p) => p.id), ["b", "c"]);
});

Deno.test("frame sanity: runts, oversize and unjoined ports are dropped and counted", () => {
  const { sw, join, count } = rig();
  join("a", 1);
  join("b", 2);
  assert.deepEqual(sw.input("a", frame(2, 1, 13)), []);
  assert.deepEqual(sw.input("a", frame(2, 1, 1515)), []);
  assert.deepEqual(sw.input("x", frame(2, 1)), []);
  assert.equal(sw.input("a", frame(2, 1, 1514)).length, 1);
  assert.equal(sw.input("a", frame(2, 1, 14)).length, 1);
  // A VLAN tag may add four bytes.
  const tagged = frame(2, 1, 1518);
  tagged.set([0x81, 0x00], 12);
  assert.equal(sw.input("a", tagged).length, 1);
  assert.deepEqual(
    { runt: sw.drops.runt, oversize: sw.drops.oversize, unjoined: sw.drops.unjoined },
    { runt: 1, oversize: 1, unjoined: 1 },
  );
  assert.equal(sw.dropped, 3);
  assert.deepEqual(count(), { a: 0, b: 3 });
  assert.equal(sw.ports.get("a")!.rxBytes, 1514 + 14 + 1518);
});

Deno.test("aging: learned MACs and silent ports go; heartbeats keep a port", () => {
  const { sw, join, tick } = rig({ agingMs: 10_000 });
  join("a", 1);
  join("b", 2);
  join("c", 3);
  sw.input("c", frame(1, 0x77));
  assert.equal(sw.lookup("52:54:00:00:00:77"), "c");
  tick(6000);
  join("a", 1); // heartbeat: a re-joins with the same MAC
  sw.input("b", frame(BCAST, 2)); // b sends
  tick(6000);
  assert.deepEqual(sw.age(), ["c"]);
  assert.deepEqual([...sw.ports.keys()], ["a", "b"]);
  assert.equal(sw.lookup("52:54:00:00:00:77"), undefined);
  // A heartbeat keeps counters and sequence numbers.
  assert.equal(sw.ports.get("a")!.txFrames, 2);
  join("a", 1);
  assert.equal(sw.ports.get("a")!.txFrames, 2);
  // A join with another MAC replaces the port.
  join("a", 9);
  assert.equal(sw.ports.get("a")!.txFrames, 0);
  assert.equal(sw.lookup("52:54:00:00:00:01"), undefined);
  assert.equal(sw.lookup("52:54:00:00:00:09"), "a");
});

Deno.test("backpressure: a slow port drops its own frames; the others get every frame", () => {
  const { sw, got, busy, join, count } = rig({ queueLimit: 8 });
  join("a", 1);
  join("b", 2);
  join("slow", 3);
  busy.add("slow");
  for (let i = 0; i < 100; i++) sw.input("a", frame(BCAST, 1, 60, i));
  assert.deepEqual(count(), { a: 0, b: 100, slow: 0 });
  assert.deepEqual(got.get("b")!.map((f) => f[14]), Array.from({ length: 100 }, (_, i) => i));
  assert.equal(sw.queued("slow"), 8);
  assert.equal(sw.ports.get("slow")!.txDropped, 92);
  assert.equal(sw.drops.queue_full, 92);
  // When the port can take frames again it gets the queued (oldest) ones, in order.
  busy.delete("slow");
  sw.resume("slow");
  assert.deepEqual(got.get("slow")!.map((f) => f[14]), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(sw.queued("slow"), 0);
});

Deno.test("hub floods everything; echo returns to the sender; a throwing sink is contained", () => {
  const hub = new VirtualSwitch("h", { mode: "hub" });
  const ok = () => true;
  hub.join("a", "52:54:00:00:00:0A", ok);
  hub.join("b", "52:54:00:00:00:0b", ok);
  hub.join("c", "52:54:00:00:00:0c", () => {
    throw new Error("boom");
  });
  assert.equal(hub.ports.get("a")?.mac, "52:54:00:00:00:0a");
  assert.deepEqual(hub.input("a", frame(2, 1)).map((p) => p.id), ["b", "c"]);
  assert.equal(hub.drops.sink_error, 1);
  assert.equal(hub.leave("c"), true);
  assert.equal(hub.leave("c"), false);
  const echo = new VirtualSwitch("e", { mode: "echo" });
  echo.join("a", "52:54:00:00:00:0a", ok);
  echo.join("b", "52:54:00:00:00:0b", ok);
  assert.deepEqual(echo.input("a", frame(2, 1)).map((p) => p.id), ["a"]);
});

Deno.test("stableMac: same VM and index give the same locally administered unicast MAC", () => {
  const m = stableMac("vm1", 0);
  assert.equal(isMac(m), true);
  assert.equal(m, stableMac("vm1", 0));
  assert.notEqual(m, stableMac("vm1", 1));
  assert.notEqual(m, stableMac("vm2", 0));
  assert.equal(m.slice(0, 8), "52:54:00");
  const b = parseMac(m);
  assert.equal(b[0] & 1, 0); // unicast
  assert.equal(b[0] & 2, 2); // locally administered
  assert.equal(isMac("52:54:00:12:34"), false);
});
