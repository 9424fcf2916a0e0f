import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { HartIrqLines } from "../machine/hart_irq.ts";
import { Irq } from "../machine/mmio.ts";
import { Plic } from "./plic.ts";

const ENABLE_M = 0x2000, ENABLE_S = 0x2080, THRESHOLD_M = 0x20_0000, CLAIM_M = 0x20_0004;
const CLAIM_S = 0x20_1004;

function setup() {
  const lines = new HartIrqLines(new GuestMemory(4096));
  return { plic: new Plic(1, 96, lines), lines };
}

Deno.test("PLIC: claim returns the highest-priority source and complete re-arms a held level", () => {
  const { plic, lines } = setup();
  plic.write(10 * 4, 4, 1);
  plic.write(11 * 4, 4, 3);
  plic.write(ENABLE_M, 4, (1 << 10) | (1 << 11));
  plic.setIrq(10, true);
  plic.setIrq(11, true);
  assert.equal(plic.read(0x1000, 4), (1 << 10) | (1 << 11), "pending bits");
  assert.equal(lines.get(0) & Irq.MEIP, Irq.MEIP);
  assert.equal(lines.get(0) & Irq.SEIP, 0, "S context has nothing enabled");
  assert.equal(plic.read(CLAIM_M, 4), 11);
  assert.equal(plic.read(CLAIM_M, 4), 10);
  assert.equal(plic.read(CLAIM_M, 4), 0, "both claimed");
  assert.equal(lines.get(0) & Irq.MEIP, 0);
  plic.setIrq(11, false);
  plic.write(CLAIM_M, 4, 11);
  plic.write(CLAIM_M, 4, 10); // line 10 still high: pending again
  assert.equal(plic.read(0x1000, 4), 1 << 10);
  assert.equal(lines.get(0) & Irq.MEIP, Irq.MEIP);
});

Deno.test("PLIC: threshold masks sources at or below it; S context drives SEIP", () => {
  const { plic, lines } = setup();
  plic.write(5 * 4, 4, 2);
  plic.write(ENABLE_M, 4, 1 << 5);
  plic.write(ENABLE_S, 4, 1 << 5);
  plic.write(THRESHOLD_M, 4, 2);
  plic.setIrq(5, true);
  assert.equal(lines.get(0) & Irq.MEIP, 0, "priority 2 does not exceed threshold 2");
  assert.equal(lines.get(0) & Irq.SEIP, Irq.SEIP);
  assert.equal(plic.read(CLAIM_M, 4), 0);
  plic.write(THRESHOLD_M, 4, 1);
  assert.equal(lines.get(0) & Irq.MEIP, Irq.MEIP);
  assert.equal(plic.read(CLAIM_S, 4), 5);
  assert.equal(lines.get(0) & (Irq.MEIP | Irq.SEIP), 0, "claimed source is no longer pending");
});

Deno.test("PLIC: priority-0 sources never interrupt; state round-trips through save/load", () => {
  const { plic, lines } = setup();
  plic.write(ENABLE_M, 4, 1 << 3);
  plic.setIrq(3, true);
  assert.equal(lines.get(0) & Irq.MEIP, 0);
  plic.write(3 * 4, 4, 1);
  const saved = structuredClone(plic.save());
  const other = setup();
  other.plic.load(saved);
  assert.equal(other.lines.get(0) & Irq.MEIP, Irq.MEIP);
  assert.equal(other.plic.read(CLAIM_M, 4), 3);
});

Deno.test("PLIC: enable words as QEMU stores them (bit 0 kept, 3 words for 96 sources)", () => {
  const { plic } = setup();
  plic.write(ENABLE_M, 4, 0xffffffff);
  assert.equal(plic.read(ENABLE_M, 4), 0xffffffff, "bit 0 is stored (source 0 never fires)");
  plic.write(ENABLE_M + 12, 4, 0xffffffff);
  assert.equal(plic.read(ENABLE_M + 12, 4), 0, "word 3 does not exist");
  plic.write(ENABLE_M, 4, 1);
  plic.write(0, 4, 7); // source 0 has no priority register
  assert.equal(plic.read(0, 4), 0);
  assert.equal(plic.read(CLAIM_M, 4), 0, "source 0 is never claimed");
});

Deno.test("PLIC: a completion is taken whether or not the context enables the source", () => {
  const { plic } = setup();
  plic.write(10 * 4, 4, 1);
  plic.write(ENABLE_M, 4, 1 << 10);
  plic.setIrq(10, true);
  assert.equal(plic.read(CLAIM_M, 4), 10);
  plic.setIrq(10, false);
  plic.write(ENABLE_M, 4, 0);
  plic.write(CLAIM_M, 4, 10); // QEMU clears the claim; the spec would ignore it
  plic.write(ENABLE_M, 4, 1 << 10);
  plic.setIrq(10, true);
  assert.equal(plic.read(CLAIM_M, 4), 10, "claimable again: the completion counted");
  plic.write(CLAIM_M, 4, 96); // ids from ndev on are ignored
  plic.write(CLAIM_M, 4, 0);
  assert.equal(plic.read(CLAIM_M, 4), 0, "still claimed");
});

Deno.test("PLIC: two Plics over one shared state see each other's claims and enables", () => {
  const { plic, lines } = setup();
  const other = new Plic(1, 96, lines, plic.shared);
  plic.write(7 * 4, 4, 1);
  other.write(ENABLE_M, 4, 1 << 7);
  plic.setIrq(7, true);
  assert.equal(other.read(0x1000, 4), 1 << 7, "pending seen through the other");
  assert.equal(other.read(CLAIM_M, 4), 7);
  assert.equal(plic.read(CLAIM_M, 4), 0, "claimed through the other");
  other.write(CLAIM_M, 4, 7);
  assert.equal(plic.read(CLAIM_M, 4), 7, "line still high: pending again after completion");
});

Deno.test("PLIC: harts in Workers claim each raise of a line exactly once", async () => {
  const harts = 2, sources = 40, rounds = 300;
  const mem = new GuestMemory(4096);
  const lines = new HartIrqLines(mem);
  const plic = new Plic(harts, 96, lines);
  for (let s = 1; s <= sources; s++) plic.write(s * 4, 4, 1 + (s % 7));
  const all = [0xfffffffe, 0x1ff]; // sources 1..40
  for (let h = 0; h < harts; h++) {
    for (let i = 0; i < 2; i++) plic.write(ENABLE_M + 2 * h * 0x80 + 4 * i, 4, all[i]);
  }
  const counts = new Int32Array(new SharedArrayBuffer(4 * (1 + harts * 97)));
  const workers = Array.from({ length: harts }, (_, hart) => {
    const w = new Worker(new URL("./plic_claim_worker.ts", import.meta.url).href, {
      type: "module",
    });
    const done = new Promise((r) => (w.onmessage = r));
    w.postMessage({ hart, harts, plic: plic.shared, memory: mem.memory, counts: counts.buffer });
    return { w, done };
  });
  const total = () => {
    let n = 0;
    for (let i = 1; i < counts.length; i++) if ((i - 1) % 97) n += Atomics.load(counts, i);
    return n;
  };
  try {
    const deadline = performance.now() + 60_000;
    // Both threads claiming: wait for them to start.
    for (let h = 0; h < harts; h++) {
      while (Atomics.load(counts, 1 + h * 97) === 0) {
        assert.ok(performance.now() < deadline, `worker ${h} did not start`);
        await new Promise((res) => setTimeout(res, 1));
      }
    }
    for (let r = 1; r <= rounds; r++) {
      for (let s = 1; s <= sources; s++) plic.setIrq(s, true); // the claiming hart drops it
      while (total() < r * sources) {
        assert.ok(performance.now() < deadline, `round ${r}: ${total()} claims`);
        await new Promise((res) => setTimeout(res, 0));
      }
    }
    assert.equal(total(), rounds * sources, "no raise claimed twice");
    for (let s = 1; s <= sources; s++) {
      let n = 0;
      for (let h = 0; h < harts; h++) n += counts[1 + h * 97 + s];
      assert.equal(n, rounds, `source ${s}`);
    }
    for (let h = 0; h < harts; h++) {
      let n = 0;
      for (let s = 1; s <= sources; s++) n += counts[1 + h * 97 + s];
      assert.ok(n > 0, `hart ${h} never claimed`);
    }
  } finally {
    Atomics.store(counts, 0, 1);
    await Promise.all(workers.map((w) => w.done));
    for (const { w } of workers) w.terminate();
  }
});
