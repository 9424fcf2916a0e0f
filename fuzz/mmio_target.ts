/**
 * Register sequences on every MMIO device of a real Machine (CLINT, PLIC, UART, RTC, test
 * finisher, boot ROM, virtio-mmio transports with rng/blk/net and the empty slots), through the
 * machine's own bus: no access may throw, reads stay in range, no virtio device may throw.
 */
import { Machine } from "../services/cpu/machine/machine.ts";
import type { VmClock } from "../services/cpu/machine/clock.ts";
import { virtioSlot } from "../services/cpu/machine/memory_map.ts";
import { ByteReader, ByteWriter } from "./bytes.ts";
import { LOOP_FIRMWARE, VIRTIO_KINDS } from "./devices.ts";
import type { Prng } from "./prng.ts";
import { type FuzzTarget, InvariantError, type Outcome } from "./target.ts";

/** Registers worth hitting often, by region name prefix (random offsets rarely land on them). */
const HOT: [string, number[]][] = [
  ["clint", [0x0, 0x4, 0x4000, 0x4004, 0x4008, 0xbff8, 0xbffc]],
  ["plic", [0x4, 0x28, 0x1000, 0x1004, 0x2000, 0x2080, 0x20_0000, 0x20_0004, 0x20_1000]],
  ["uart", [0, 1, 2, 3, 4, 5, 6, 7]],
  ["rtc", [0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c]],
  ["test", [0x0]],
  ["virtio", [0x0, 0x10, 0x14, 0x20, 0x24, 0x30, 0x34, 0x38, 0x44, 0x50, 0x64, 0x70, 0x80, 0xa0]],
];

class InputClock implements VmClock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
}

function machine(clock: VmClock): Machine {
  return new Machine({
    ramSize: 1 << 20,
    bios: LOOP_FIRMWARE,
    clock,
    virtio: VIRTIO_KINDS.map(([, make], slot) => ({ slot, device: make(), legacy: slot === 2 })),
  });
}

const SIZES = [1, 2, 4] as const;

/**
 * The MMIO target; an input is a list of accesses (region, offset, size, value, clock step).
 *
 * @example
 * ```ts
 * await mmioTarget.run(Uint8Array.of(0, 0, 0, 0)); // one read of the first register
 * ```
 */
export const mmioTarget: FuzzTarget = {
  name: "mmio",
  description: "random reads/writes on every device of a real Machine: no throw, reads in range",
  generate(r: Prng): Uint8Array {
    const w = new ByteWriter();
    const n = 1 + r.below(200);
    for (let i = 0; i < n; i++) {
      w.u8(r.below(256)); // region
      w.u8(r.below(256)); // how the offset is chosen, size, read/write
      w.u32(r.next()); // offset source
      w.u32(r.below(4) === 0 ? r.interesting32() : r.below(3) ? r.below(16) : r.next());
      w.u8(r.oneIn(4) ? r.below(256) : 0); // clock step
    }
    return w.finish();
  },
  run(input: Uint8Array): Outcome {
    const clock = new InputClock();
    const m = machine(clock);
    // Every mapped region, and every virtio slot (the free ones answer as empty transports).
    const regions = [...m.regions];
    for (let s = VIRTIO_KINDS.length; s < 8; s++) regions.push(virtioSlot(s));
    const rd = new ByteReader(input);
    while (rd.more) {
      const region = regions[rd.u8() % regions.length];
      const how = rd.u8();
      const src = rd.u32(), value = rd.u32();
      clock.t += rd.u8() * 1000;
      const hot = HOT.find(([p]) => region.name.startsWith(p))?.[1] ?? [0];
      const pick = how & 3;
      const size = SIZES[(how >> 2) % 3];
      const offset = pick === 0
        ? hot[src % hot.length]
        : pick === 1
        ? src % 0x200
        : pick === 2
        ? src % region.size
        : (src % (region.size + 8)) - 4; // the edges and just past them
      const paddr = region.base + offset;
      if (how & 0x40) {
        m.bus.store(paddr, size, value);
      } else {
        const v = m.bus.load(paddr, size);
        if (v !== -1 && !(Number.isInteger(v) && v >= 0 && v < 2 ** (8 * size))) {
          throw new InvariantError(`${region.name}+0x${offset.toString(16)} read ${v}`);
        }
      }
      if (how & 0x80) m.uart.receive(Uint8Array.of(value & 0xff));
    }
    for (const v of m.virtio) {
      if (v.transport.deviceExceptions !== 0) {
        throw new InvariantError(`${v.transport.name}: device threw: ${v.transport.lastError}`);
      }
    }
    return "accepted";
  },
};
