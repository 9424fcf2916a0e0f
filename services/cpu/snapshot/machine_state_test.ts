import assert from "node:assert/strict";
import { Machine } from "../machine/machine.ts";
import { checkMachineRecords, loadMachine, saveMachine } from "./machine_state.ts";
import { SnapshotError } from "./snapshot_error.ts";
import { VirtioRng } from "../virtio/rng.ts";
import { assemble, PRELUDE } from "../machine/asm_test_support.ts";
import { parseElf } from "../machine/elf.ts";
import type { Hart } from "../hart/hart.ts";

/** `addi a0, a0, 1; j .-4` at the reset target: a counter in a0. */
const COUNTER = new Uint8Array(new Uint32Array([0x00150513, 0xffdff06f]).buffer);

const machine = () =>
  new Machine({
    ramSize: 4 << 20,
    bios: COUNTER,
    engine: "interp",
    virtio: [{ slot: 0, device: new VirtioRng() }],
  });

Deno.test("saveMachine/loadMachine: a real machine's records move to a new one", () => {
  const a = machine();
  a.hart.run(10_001);
  const rec = saveMachine(a);
  assert.deepEqual(rec.harts.map((h) => [h.device, h.kind]), [["hart0", "rv64-hart"]]);
  assert.deepEqual(rec.devices.map((d) => d.device), ["clint", "uart0", "rtc", "virtio0", "plic"]);

  const b = machine();
  b.mem.ram().set(a.mem.ram());
  loadMachine(b, rec.harts, rec.devices);
  assert.equal(b.hart.pc, a.hart.pc);
  assert.equal(b.hart.instret, a.hart.instret);
  assert.deepEqual(saveMachine(b), rec, "the same records come back out");
  a.hart.run(1000);
  b.hart.run(1000);
  assert.deepEqual(b.hart.save(), a.hart.save(), "both run on alike");
});

Deno.test("checkMachineRecords: another device set or a bad record is refused first", () => {
  const a = machine();
  const rec = saveMachine(a);
  const noRng = new Machine({ ramSize: 4 << 20, bios: COUNTER, engine: "interp" });
  assert.throws(
    () => checkMachineRecords(noRng, rec.harts, rec.devices),
    (e: Error) => e instanceof SnapshotError && /virtio0/.test(e.message),
  );
  const bad = rec.devices.map((d) =>
    d.device === "uart0" ? { ...d, state: new TextEncoder().encode("{") } : d
  );
  assert.throws(() => checkMachineRecords(a, rec.harts, bad), /record of uart0 is not valid/);
  assert.throws(() => checkMachineRecords(a, [], rec.devices), /0 harts/);
});

Deno.test("saveMachine/loadMachine: four harts sharing an AMO counter carry on alike", async () => {
  const kernel = await assemble(
    PRELUDE + `
    la t0, word
    li t1, 1
    li a1, 0               # the boot ROM left the device tree's address here
  1:
    amoadd.w zero, t1, (t0)
    addi a1, a1, 1
    j 1b
    .data
    .align 3
    .globl word
  word: .word 0
  `,
  );
  const wordAt = parseElf(kernel).symbols.get("word")!;
  const smp = () => new Machine({ ramSize: 4 << 20, harts: 4, kernel, engine: "interp" });
  // The machine's own round-robin, by hand: each hart a batch in turn.
  const rounds = (m: Machine, n: number, batch: number) => {
    for (let r = 0; r < n; r++) for (const h of m.harts) h.run(batch + r % 7);
  };
  const a = smp();
  rounds(a, 20, 997);
  const rec = saveMachine(a);
  assert.deepEqual(rec.harts.map((h) => h.device), ["hart0", "hart1", "hart2", "hart3"]);
  const b = smp();
  b.mem.ram().set(a.mem.ram());
  loadMachine(b, rec.harts, rec.devices);
  rounds(a, 20, 1009);
  rounds(b, 20, 1009);
  for (let id = 0; id < 4; id++) {
    assert.deepEqual(b.harts[id].save(), a.harts[id].save(), `hart ${id} runs on alike`);
    assert.ok(a.harts[id].instret > 20_000, `hart ${id} ran`);
  }
  assert.deepEqual(b.mem.ram(), a.mem.ram(), "RAM alike (the counter included)");
  // Every hart's increments are in the shared counter (a1 counts each hart's own; a batch may
  // end between a hart's amoadd and its addi).
  const counter = new DataView(a.mem.readPhys(wordAt, 4).buffer).getUint32(0, true);
  const own = a.harts.reduce((n, h) => n + Number((h as Hart).getReg(11)), 0);
  assert.ok(counter - own >= 0 && counter - own <= 4, `counter ${counter}, harts' own ${own}`);
});
