/**
 * The catalogue of bare-metal ISA test programs under tests/riscv/isa: which board each
 * needs under QEMU and what its console must show when it passes.
 */

import { buildProgram } from "./build.ts";

/** The QEMU board a program is built for (vmesh runs both flavours). */
export type Board = "spike" | "virt";

/** One self-checking program. */
export interface IsaProgram {
  /** File name under tests/riscv/isa without extension. */
  name: string;
  /** What it covers (test name suffix). */
  covers: string;
  /**
   * spike: HTIF console and exit. virt: 16550 UART and SiFive test finisher (QEMU gives
   * the `time` CSR and Sstc only on virt).
   */
  board: Board;
  /** Exact console output on success. */
  expected: string;
  /** Harts to run it with (QEMU `-smp`, vmesh `--smp`); default 1. */
  smp?: number;
}

/** Every ISA program, in the order the tests run them. */
export const ISA_PROGRAMS: readonly IsaProgram[] = [
  {
    name: "hello",
    covers: "HTIF console and exit",
    board: "spike",
    expected: "hello from bare metal\nPASS\n",
  },
  {
    name: "rv64i",
    covers: "RV64I ALU, immediates, shifts, W-ops, branches, jumps, loads/stores, fence.i",
    board: "spike",
    expected: "PASS\n",
  },
  {
    name: "rv64m",
    covers: "M extension incl. division corners",
    board: "spike",
    expected: "PASS\n",
  },
  { name: "rv64a", covers: "A extension: LR/SC and every AMO", board: "spike", expected: "PASS\n" },
  {
    name: "rvc",
    covers: "C extension: explicit compressed forms",
    board: "spike",
    expected: "PASS\n",
  },
  {
    name: "zicsr",
    covers: "Zicsr: CSR instructions, read-only/unknown CSRs, views",
    board: "spike",
    expected: "PASS\n",
  },
  { name: "zicntr", covers: "Zicntr: cycle, instret, time", board: "virt", expected: "PASS\n" },
  {
    name: "traps",
    covers: "exceptions, delegation, xRET, TSR/TVM/TW, MPRV",
    board: "spike",
    expected: "PASS\n",
  },
  {
    name: "interrupts",
    covers: "CLINT timer/software interrupts, priority, vectored mtvec, WFI, STIP/SSIP",
    board: "spike",
    expected: "PASS\n",
  },
  { name: "sstc", covers: "Sstc stimecmp in S-mode", board: "virt", expected: "PASS\n" },
  {
    name: "sv39",
    covers: "Sv39 paging, faults, SUM/MXR, A/D, sfence.vma, MPRV",
    board: "spike",
    expected: "PASS\n",
  },
  { name: "sv48", covers: "Sv48 four-level paging", board: "spike", expected: "PASS\n" },
  { name: "pmp", covers: "PMP TOR/NA4/NAPOT, priority, lock", board: "spike", expected: "PASS\n" },
  {
    name: "plic",
    covers: "UART interrupt through the PLIC to M and S contexts",
    board: "virt",
    expected: "PASS\n",
  },
  {
    name: "fpu",
    covers: "F/D arithmetic, conversions, rounding, flags, FS=Off",
    board: "spike",
    expected: "PASS\n",
  },
  {
    name: "smc",
    covers: "code rewritten with and without FENCE.I, a page remapped, a trap in a hot loop",
    board: "spike",
    expected: "PASS\n",
  },
  {
    name: "breakpoint",
    covers: "Sdtrig: tselect/tdata/tinfo, mcontrol and mcontrol6 execute/load/store triggers",
    board: "spike",
    expected: "PASS\n",
  },
  {
    name: "smp",
    covers: "4 harts: AMO and LR/SC counters, a ticket lock, message passing, msip IPIs to WFI",
    board: "virt",
    expected: "PASS\n",
    smp: 4,
  },
];

/** Compiler flags for a board flavour. */
export function boardFlags(board: Board): string[] {
  return board === "virt" ? ["-DVMESH_VIRT"] : [];
}

/** Builds an ISA program (cached) and returns its ELF path. */
export function buildIsaProgram(p: IsaProgram): Promise<string> {
  return buildProgram(`isa/${p.name}.c`, { flags: boardFlags(p.board) });
}
