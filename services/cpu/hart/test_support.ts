/**
 * Test support for hart unit tests: assembles RISC-V source with the Debian cross toolchain and
 * runs it on a hart with a small in-memory physical bus (the only fake: a test finisher at
 * 0x100000 that requests exit, a 4 KiB scratch MMIO window at 0x10000000, nothing else mapped).
 */
import { DRAM_BASE, GuestMemory, HartLayout } from "../guest_memory.ts";
import type { PhysicalBus } from "../machine/mmio.ts";
import type { VmClock } from "../machine/clock.ts";
import type { StopReason } from "../engine.ts";
import { Hart } from "./hart.ts";

/** Address of the test finisher: any store requests the hart to stop. */
export const FINISHER = 0x100000;
/** A 4 KiB MMIO scratch window (word-addressable registers). */
export const MMIO_SCRATCH = 0x1000_0000;

/** Assembles `source` (GNU as syntax, entry `_start`) for 0x80000000; returns the flat binary. */
export async function assemble(source: string, march = "rv64gc"): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-hart-" });
  try {
    const src = `${dir}/t.S`, elf = `${dir}/t.elf`, bin = `${dir}/t.bin`;
    await Deno.writeTextFile(src, source);
    const gcc = await new Deno.Command("riscv64-unknown-elf-gcc", {
      args: [
        "-nostdlib",
        `-march=${march}`,
        "-mabi=lp64d",
        `-Wl,-Ttext=0x${DRAM_BASE.toString(16)}`,
        "-Wl,--no-relax",
        "-o",
        elf,
        src,
      ],
      stderr: "piped",
    }).output();
    if (!gcc.success) throw new Error(`assembler failed:\n${new TextDecoder().decode(gcc.stderr)}`);
    const oc = await new Deno.Command("riscv64-unknown-elf-objcopy", {
      args: ["-O", "binary", elf, bin],
      stderr: "piped",
    }).output();
    if (!oc.success) throw new Error(`objcopy failed: ${new TextDecoder().decode(oc.stderr)}`);
    return await Deno.readFile(bin);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A settable clock for deterministic timer tests. */
export class ManualClock implements VmClock {
  ticks = 0;
  now(): number {
    return this.ticks;
  }
}

/** The in-test physical bus. */
export class TestBus implements PhysicalBus {
  readonly scratch = new Uint32Array(1024);
  readonly log: string[] = [];
  constructor(private readonly onExit: () => void) {}
  load(paddr: number, size: 1 | 2 | 4): number {
    if (paddr >= MMIO_SCRATCH && paddr + size <= MMIO_SCRATCH + 4096) {
      const word = this.scratch[(paddr - MMIO_SCRATCH) >> 2];
      const shift = (paddr & 3) * 8;
      return size === 4 ? word : (word >>> shift) & ((1 << (8 * size)) - 1);
    }
    return -1;
  }
  store(paddr: number, size: 1 | 2 | 4, value: number): boolean {
    if (paddr === FINISHER) {
      this.onExit();
      return true;
    }
    if (paddr >= MMIO_SCRATCH && paddr + size <= MMIO_SCRATCH + 4096) {
      this.log.push(`${size}@${(paddr - MMIO_SCRATCH).toString(16)}=${value >>> 0}`);
      const i = (paddr - MMIO_SCRATCH) >> 2;
      if (size === 4) this.scratch[i] = value;
      else {
        const shift = (paddr & 3) * 8;
        const mask = ((1 << (8 * size)) - 1) << shift;
        this.scratch[i] = (this.scratch[i] & ~mask) | ((value << shift) & mask);
      }
      return true;
    }
    return false;
  }
}

/** A hart with its memory, bus and clock. */
export interface TestMachine {
  hart: Hart;
  mem: GuestMemory;
  bus: TestBus;
  clock: ManualClock;
}

/** Builds a hart over 4 MiB of RAM with `binary` loaded at DRAM_BASE. */
export function makeMachine(binary: Uint8Array, ramSize = 4 << 20): TestMachine {
  const mem = new GuestMemory(ramSize);
  const clock = new ManualClock();
  const exitIdx = (mem.hartBase(0) + HartLayout.EXIT_REQUEST) >> 2;
  const bus = new TestBus(() => Atomics.store(mem.i32, exitIdx, 1));
  mem.writePhys(DRAM_BASE, binary);
  const hart = new Hart({ mem, hartId: 0, bus, clock });
  hart.reset(DRAM_BASE);
  return { hart, mem, bus, clock };
}

/** Assembles and runs `source` until it stores to the finisher (or the budget ends). */
export async function runProgram(
  source: string,
  budget = 1_000_000,
): Promise<TestMachine & { stop: StopReason }> {
  const m = makeMachine(await assemble(source));
  const stop = m.hart.run(budget);
  return { ...m, stop };
}

/** Assembly epilogue: stop the hart through the finisher. */
export const EXIT = `
  li t6, ${FINISHER}
  sw zero, 0(t6)
9: j 9b
`;
