/**
 * A machine's state as snapshot records: one per hart (its engine `save()` bytes) and one per
 * device (its `save()` record as JSON). Composed from the machine's public parts; each device
 * serializes itself, nothing here knows a device's fields.
 * @module
 */
import type { EngineSnapshot } from "../engine.ts";
import type { Machine, MachineHart } from "../machine/machine.ts";
import type { memory } from "@vmesh/bus";
import { SnapshotError } from "./snapshot_error.ts";

/** A device of the machine with its saved-state methods. */
interface Saveable {
  save(): unknown;
  load(state: unknown): void;
}

/** Device records in load order: devices that raise interrupts first, the PLIC last. */
function devicesOf(m: Machine): { device: string; kind: string; d: Saveable }[] {
  return [
    { device: "clint", kind: "clint", d: m.clint as Saveable },
    { device: "uart0", kind: "uart16550", d: m.uart as Saveable },
    { device: "rtc", kind: "goldfish-rtc", d: m.rtc as Saveable },
    ...m.virtio.map((v) => ({
      device: `virtio${v.slot}`,
      kind: `virtio-mmio:${v.transport.device.deviceId}`,
      d: v.transport as unknown as Saveable,
    })),
    // Its saved levels and pending bits are those of the same instant: authoritative.
    { device: "plic", kind: "plic", d: m.plic as Saveable },
  ];
}

/** The machine's harts by hart id. */
export function hartsOf(m: Machine): readonly MachineHart[] {
  return m.harts;
}

/** Every hart and device record of `m` (call between run batches: no hart is running). */
export function saveMachine(
  m: Machine,
): { harts: memory.DeviceState[]; devices: memory.DeviceState[] } {
  const enc = new TextEncoder();
  return {
    harts: hartsOf(m).map((h, id) => {
      const s = h.save();
      return { device: `hart${id}`, kind: s.kind, version: s.version, state: s.bytes };
    }),
    devices: devicesOf(m).map(({ device, kind, d }) => ({
      device,
      kind,
      version: 1,
      state: enc.encode(JSON.stringify(d.save())),
    })),
  };
}

/**
 * Checks that the records fit `m` (same harts and devices, decodable states) without
 * changing anything; throws a {@link SnapshotError} saying what differs.
 */
export function checkMachineRecords(
  m: Machine,
  harts: memory.DeviceState[],
  devices: memory.DeviceState[],
): unknown[] {
  const n = hartsOf(m).length;
  if (harts.length !== n) {
    throw new SnapshotError(`the snapshot has ${harts.length} harts; the rebuilt machine has ${n}`);
  }
  const want = devicesOf(m).map((x) => `${x.device}(${x.kind})`).join(", ");
  const got = devices.map((x) => `${x.device}(${x.kind})`).join(", ");
  if (want !== got) {
    throw new SnapshotError(`the snapshot's devices are ${got}; the rebuilt machine has ${want}`);
  }
  const dec = new TextDecoder("utf-8", { fatal: true });
  return devices.map((x) => {
    try {
      return JSON.parse(dec.decode(x.state));
    } catch (e) {
      throw new SnapshotError(`the record of ${x.device} is not valid: ${(e as Error).message}`);
    }
  });
}

/**
 * Loads hart and device records into `m` (RAM must already hold the snapshot's pages:
 * virtio transports re-validate their rings and resubmit requests that were in flight).
 */
export function loadMachine(
  m: Machine,
  harts: memory.DeviceState[],
  devices: memory.DeviceState[],
): void {
  const states = checkMachineRecords(m, harts, devices);
  hartsOf(m).forEach((hart, id) => {
    const h = harts[id];
    const snap: EngineSnapshot = { kind: h.kind, version: h.version ?? 0, bytes: h.state };
    try {
      hart.load(snap);
    } catch (e) {
      throw new SnapshotError(`hart${id}: ${(e as Error).message}`);
    }
  });
  devicesOf(m).forEach(({ device, d }, i) => {
    try {
      d.load(states[i]);
    } catch (e) {
      throw new SnapshotError(`${device}: ${(e as Error).message}`);
    }
  });
}
