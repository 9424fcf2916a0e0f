import assert from "node:assert/strict";
import { Machine } from "../machine/machine.ts";
import { checkMachineRecords, loadMachine, saveMachine } from "./machine_state.ts";
import { SnapshotError } from "./snapshot_error.ts";
import { VirtioRng } from "../virtio/rng.ts";

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
