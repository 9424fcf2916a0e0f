import assert from "node:assert/strict";
import { GuestMemory } from "../guest_memory.ts";
import { HartIrqLines } from "../machine/hart_irq.ts";
import type { VmClock } from "../machine/clock.ts";
import type { MmioDevice, Stateful } from "../machine/mmio.ts";
import { BootRom } from "./boot_rom.ts";
import { Clint } from "./clint.ts";
import { GoldfishRtc } from "./goldfish_rtc.ts";
import { Plic } from "./plic.ts";
import { SifiveTest } from "./sifive_test.ts";
import { Uart16550 } from "./uart16550.ts";

/** A clock the test advances, so two copies of a device see the same time. */
class ManualClock implements VmClock {
  t = 1_000;
  now(): number {
    return this.t;
  }
}

/** What a device did to the outside: events in order (bytes, requests) and its line level now. */
interface Observed {
  events: unknown[];
  level: unknown;
}

/** One device instance and everything it drives (interrupt lines, output), for comparison. */
interface Rig {
  dev: MmioDevice & Stateful<unknown>;
  observed(): Observed;
}

/** Builds a fresh device of one kind on `clock`; two calls make two independent copies. */
type Make = (clock: ManualClock) => Rig;

const EPOCH_NS = 1_700_000_000 * 1e9;

/** Interrupt lines of one hart as the device leaves them (mip bits in its own memory). */
function hartLines() {
  const mem = new GuestMemory(4096);
  const lines = new HartIrqLines(mem);
  return { lines, mip: () => lines.get(0) };
}

/** Register offsets each kind is poked at more often (random offsets rarely hit them). */
const HOT: Record<string, number[]> = {
  clint: [0x0, 0x4000, 0x4004, 0xbff8, 0xbffc],
  plic: [0x28, 0x2c, 0x1000, 0x2000, 0x2080, 0x20_0000, 0x20_0004, 0x20_1000, 0x20_1004],
  uart: [0, 1, 2, 3, 4, 5, 6, 7],
  rtc: [0x00, 0x04, 0x08, 0x0c, 0x10, 0x14, 0x18, 0x1c],
  test: [0x0],
  "boot rom": [0x0, 0x20],
};

const KINDS: [string, number, Make][] = [
  ["clint", 0x1_0000, (clock) => {
    const h = hartLines();
    return { dev: new Clint(1, clock, h.lines), observed: () => ({ events: [], level: h.mip() }) };
  }],
  ["plic", 0x60_0000, (_clock) => {
    const h = hartLines();
    const plic = new Plic(1, 96, h.lines);
    // Sources toggle as a side channel of the accesses (see `poke`).
    return { dev: plic, observed: () => ({ events: [], level: h.mip() }) };
  }],
  ["uart", 0x100, (_clock) => {
    const out: number[] = [];
    const levels: boolean[] = [];
    const uart = new Uart16550({ onTransmit: (b) => out.push(b), setIrq: (l) => levels.push(l) });
    return { dev: uart, observed: () => ({ events: [...out], level: levels.at(-1) ?? false }) };
  }],
  ["rtc", 0x1000, (clock) => {
    const levels: boolean[] = [];
    const rtc = new GoldfishRtc(clock, (l) => levels.push(l), EPOCH_NS);
    return { dev: rtc, observed: () => ({ events: [], level: levels.at(-1) ?? false }) };
  }],
  ["test", 0x1000, (_clock) => {
    const reqs: unknown[] = [];
    return {
      dev: new SifiveTest((r) => reqs.push(r)),
      observed: () => ({ events: [...reqs], level: null }),
    };
  }],
  ["boot rom", 0xf000, (_clock) => ({
    dev: new BootRom({ startAddr: 0x8000_0000, fdtAddr: 0x8000_0000, size: 0xf000 }),
    observed: () => ({ events: [], level: null }),
  })],
];

/** A deterministic pseudo-random generator (LCG). */
function rng(seed: number) {
  return (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
}

const SIZES = [1, 2, 4] as const;

/** One random access: an offset, a size, read or write, a value; and extra stimuli. */
interface Access {
  offset: number;
  size: 1 | 2 | 4;
  write: boolean;
  value: number;
  tick: number;
  input: number;
  irq: number;
}

function accesses(seed: number, span: number, n: number, hot: number[]): Access[] {
  const r = rng(seed);
  const out: Access[] = [];
  for (let i = 0; i < n; i++) {
    const pick = r(3);
    // A third at the registers, a third near the start of the region, a third anywhere.
    const offset = pick === 0 ? hot[r(hot.length)] : pick === 1 ? r(0x100) : r(span);
    // Registers are mostly 32-bit: favour that size there so writes take effect.
    const size = pick === 0 && r(4) !== 0 ? 4 : SIZES[r(3)];
    out.push({
      offset,
      size,
      write: r(2) === 1,
      value: r(2 ** 32) & (size === 4 ? -1 : (1 << (8 * size)) - 1),
      tick: r(4) === 0 ? r(50_000) : 0,
      input: r(16) === 0 ? 0x20 + r(90) : -1,
      irq: r(8) === 0 ? 1 + r(96) : 0,
    });
  }
  return out;
}

/** Applies one access (plus clock, input and line stimuli); returns what a read returned. */
function poke(rig: Rig, a: Access, clock: ManualClock, lineLevels: Map<number, boolean>): number {
  clock.t += a.tick;
  const dev = rig.dev as MmioDevice & Partial<{ tick(): void; receive(b: Uint8Array): number }>;
  dev.tick?.();
  if (a.input >= 0 && dev.receive) dev.receive(Uint8Array.of(a.input));
  if (a.irq && dev instanceof Plic) {
    const level = !(lineLevels.get(a.irq) ?? false);
    lineLevels.set(a.irq, level);
    dev.setIrq(a.irq, level);
  }
  if (a.write) {
    dev.write(a.offset, a.size, a.value);
    return -1;
  }
  return dev.read(a.offset, a.size);
}

Deno.test("device models survive random MMIO accesses: reads stay in range", () => {
  for (const [name, span, make] of KINDS) {
    const clock = new ManualClock();
    const rig = make(clock);
    const lines = new Map<number, boolean>();
    for (const a of accesses(12345, span, 20_000, HOT[name])) {
      const v = poke(rig, a, clock, lines);
      if (!a.write) {
        assert.ok(Number.isInteger(v) && v >= 0 && v < 2 ** (8 * a.size), `${name} read ${v}`);
      }
    }
  }
});

Deno.test("device state round-trips: a fresh device loaded from save() behaves identically", () => {
  for (const [name, span, make] of KINDS) {
    const clock = new ManualClock();
    const original = make(clock);
    const lines = new Map<number, boolean>();
    for (const a of accesses(777, span, 5_000, HOT[name])) poke(original, a, clock, lines);

    // Through structuredClone, as a snapshot written out and read back would be.
    const state = structuredClone(original.dev.save());
    const copy = make(clock);
    copy.dev.load(state);
    assert.deepEqual(copy.dev.save(), original.dev.save(), `${name}: state after load`);

    // The same further accesses on both (interleaved, so both see the same clock): every
    // read, every output and the final state must agree.
    const copyLines = new Map(lines);
    const originalBefore = original.observed().events.length;
    const copyBefore = copy.observed().events.length;
    let reads = 0;
    for (const a of accesses(4242, span, 5_000, HOT[name])) {
      const want = poke(original, a, clock, lines);
      const got = poke(copy, { ...a, tick: 0 }, clock, copyLines); // the clock moved already
      assert.equal(got, want, `${name}: ${a.write ? "write" : "read"} @${a.offset.toString(16)}`);
      if (!a.write) reads++;
    }
    assert.ok(reads > 1000, `${name}: enough reads compared`);
    assert.deepEqual(copy.dev.save(), original.dev.save(), `${name}: state after more accesses`);
    const o = original.observed(), c = copy.observed();
    assert.deepEqual(c.level, o.level, `${name}: interrupt level after load`);
    assert.deepEqual(
      c.events.slice(copyBefore),
      o.events.slice(originalBefore),
      `${name}: output after load`,
    );
  }
});
