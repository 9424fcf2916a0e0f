/**
 * Region discovery for the translator: starting at a hot entry pc, the instructions reachable
 * inside the same 4 KiB guest page, cut into basic blocks. A region ends where control leaves
 * the page, at an indirect jump, or before an instruction the translator leaves to the
 * interpreter. With helpers, floating point, AMOs and CSR reads stay inside a region as calls
 * into the interpreter, and the other SYSTEM instructions and FENCE.I end it after such a
 * call; without them, all of those end the region before them. Illegal encodings always do.
 *
 * @example
 * ```ts
 * // `fetch(pc)` returns the 32 bits at pc, unsigned (or -1 when they cannot be read).
 * const region = discoverRegion(0x8000_0000, fetch, compressedTable());
 * region?.blocks[0].insns.length;
 * ```
 */

/** Most guest instructions in one region (bounds wasm size and compile time). */
export const MAX_REGION_INSNS = 512;
const PAGE = 4096;

/** One decoded guest instruction. */
export interface GuestInsn {
  /** Guest virtual pc (a double holding the signed 64-bit value). */
  pc: number;
  /** The 32-bit form (compressed instructions expanded). */
  insn: number;
  /** Encoded length: 2 or 4 bytes. */
  len: number;
  /** How it is emitted. */
  kind: Kind;
}

/** How the emitter handles an instruction. */
export const enum Kind {
  /** Emitted as WebAssembly. */
  Inline,
  /** A call into the interpreter for this one instruction; the region goes on after it. */
  Helper,
  /** A call into the interpreter; the region ends after it (the hart's mode may change). */
  HelperExit,
}

/** A straight-line run of instructions entered only at its first one. */
export interface BasicBlock {
  /** pc of the first instruction. */
  start: number;
  insns: GuestInsn[];
}

/** The blocks of one region, `blocks[0]` starting at the entry pc. */
export interface Region {
  entry: number;
  blocks: BasicBlock[];
  /** Instructions in all blocks. */
  insnCount: number;
}

/** How an instruction ends (or does not end) a basic block. */
export const enum Flow {
  /** Falls through to the next instruction. */
  Next,
  /** Conditional branch: target or next. */
  Branch,
  /** JAL: always the target. */
  Jump,
  /** JALR: target known only at run time. */
  Indirect,
  /** Ends the region after a helper (pc from the interpreter). */
  Exit,
}

/**
 * CSRs a region may write through the helper and go on: their writes change neither the
 * mapping nor the code (a mode change makes the helper leave, as does an interrupt the write
 * enabled). Linux's local_irq_save/restore (csrrci/csrs sstatus) and trap entry's sscratch
 * swap ended a region every time before.
 */
const IN_REGION_CSR_WRITES = new Set([
  0x100, // sstatus
  0x104, // sie
  0x140, // sscratch
  0x141, // sepc
  0x142, // scause
  0x143, // stval
  0x300, // mstatus
  0x304, // mie
  0x340, // mscratch
  0x341, // mepc
  0x342, // mcause
  0x343, // mtval
]);

/**
 * The kind of an instruction `translatable` refuses: Helper for floating point, AMOs, pure
 * CSR reads and writes of {@link IN_REGION_CSR_WRITES}; HelperExit for the other SYSTEM
 * instructions and FENCE.I; -1 for what only the
 * interpreter may see first (illegal or reserved encodings, which must trap there).
 */
export function helperKind(insn: number): Kind | -1 {
  const f3 = (insn >>> 12) & 7;
  switch ((insn >>> 2) & 31) {
    case 1: // LOAD-FP, STORE-FP, FMADD..FNMADD, OP-FP
    case 9:
    case 16:
    case 17:
    case 18:
    case 19:
    case 20:
    case 11: // AMO
      return Kind.Helper;
    case 3: // MISC-MEM: FENCE.I
      return f3 === 1 ? Kind.HelperExit : -1;
    case 28: { // SYSTEM
      if (f3 === 4) return -1;
      // csrrs/csrrc with rs1 = x0 and csrrsi/csrrci with uimm 0 only read.
      const reads = (f3 & 3) >= 2 && ((insn >>> 15) & 31) === 0;
      if (reads || (f3 !== 0 && IN_REGION_CSR_WRITES.has(insn >>> 20))) return Kind.Helper;
      return Kind.HelperExit;
    }
    default:
      return -1;
  }
}

/**
 * Whether the translator emits `insn` itself (true) or leaves it to the interpreter. Illegal
 * encodings inside supported opcodes are left to the interpreter too, so it raises the trap.
 */
export function translatable(insn: number): boolean {
  const f3 = (insn >>> 12) & 7, f7 = insn >>> 25;
  switch ((insn >>> 2) & 31) {
    case 4: // OP-IMM
      if (f3 === 1) return (insn >>> 26) === 0;
      if (f3 === 5) return (insn >>> 26) === 0 || (insn >>> 26) === 0x10;
      return true;
    case 12: // OP
      return f7 === 0 || f7 === 1 || (f7 === 0x20 && (f3 === 0 || f3 === 5));
    case 6: // OP-IMM-32
      return f3 === 0 || (f3 === 1 && f7 === 0) || (f3 === 5 && (f7 === 0 || f7 === 0x20));
    case 14: // OP-32
      if (f7 === 1) return f3 === 0 || f3 >= 4;
      return (f7 === 0 && (f3 === 0 || f3 === 1 || f3 === 5)) ||
        (f7 === 0x20 && (f3 === 0 || f3 === 5));
    case 13: // LUI
    case 5: // AUIPC
    case 27: // JAL
      return true;
    case 25: // JALR
      return f3 === 0;
    case 24: // BRANCH
      return f3 !== 2 && f3 !== 3;
    case 0: // LOAD
      return f3 !== 7;
    case 8: // STORE
      return f3 <= 3;
    case 3: // MISC-MEM: FENCE only (FENCE.I goes to the interpreter, which flushes code)
      return f3 === 0;
    default:
      return false;
  }
}

/** The control flow of an instruction in a region. */
export function flowOf(insn: number, kind: Kind = Kind.Inline): Flow {
  if (kind === Kind.HelperExit) return Flow.Exit;
  if (kind === Kind.Helper) return Flow.Next;
  switch ((insn >>> 2) & 31) {
    case 24:
      return Flow.Branch;
    case 27:
      return Flow.Jump;
    case 25:
      return Flow.Indirect;
    default:
      return Flow.Next;
  }
}

/** Target of a B-type branch at `pc`. */
export function branchTarget(pc: number, insn: number): number {
  return pc + (((insn >> 31) << 12) | (((insn >>> 7) & 1) << 11) |
    (((insn >>> 25) & 0x3f) << 5) | (((insn >>> 8) & 0xf) << 1));
}

/** Target of a JAL at `pc`. */
export function jalTarget(pc: number, insn: number): number {
  return pc + (((insn >> 31) << 20) | (((insn >>> 12) & 0xff) << 12) |
    (((insn >>> 20) & 1) << 11) | (((insn >>> 21) & 0x3ff) << 1));
}

function pageOf(pc: number): number {
  return pc - (pc - Math.floor(pc / PAGE) * PAGE);
}

/**
 * Finds the region that starts at `entry`. `fetch(pc)` returns the 32 bits at `pc` as an
 * unsigned number (a compressed parcel in the low half), or -1 when they cannot be read; `ctab` expands compressed parcels (rvc.ts). Returns
 * null when the first instruction is not translatable.
 */
export function discoverRegion(
  entry: number,
  fetch: (pc: number) => number,
  ctab: Int32Array,
  maxInsns = MAX_REGION_INSNS,
  helpers = false,
): Region | null {
  const page = pageOf(entry);
  const decoded = new Map<number, GuestInsn>();
  const leaders = new Set<number>([entry]);
  const work = [entry];
  const decode = (pc: number): GuestInsn | null => {
    const off = pc - page;
    if (off < 0 || off >= PAGE) return null;
    const raw = fetch(pc);
    if (raw < 0) return null;
    const len = (raw & 3) === 3 ? 4 : 2;
    if (off + len > PAGE) return null; // crosses the page: the interpreter fetches it
    const insn = len === 4 ? raw | 0 : ctab[raw & 0xffff];
    if (insn === 0) return null;
    if (translatable(insn)) return { pc, insn, len, kind: Kind.Inline };
    const kind = helpers ? helperKind(insn) : -1;
    if (kind === -1) return null;
    // A region that would be only this call is left to the interpreter, which runs it as well.
    if (pc === entry && kind === Kind.HelperExit) return null;
    return { pc, insn, len, kind };
  };
  // Reachable instructions inside the page, depth first from the entry.
  while (work.length > 0 && decoded.size < maxInsns) {
    let pc = work.pop()!;
    while (!decoded.has(pc) && decoded.size < maxInsns) {
      const d = decode(pc);
      if (!d) break;
      decoded.set(pc, d);
      const flow = flowOf(d.insn, d.kind);
      if (flow === Flow.Next) {
        pc += d.len;
        continue;
      }
      if (flow === Flow.Branch || flow === Flow.Jump) {
        const t = flow === Flow.Branch ? branchTarget(pc, d.insn) : jalTarget(pc, d.insn);
        if (pageOf(t) === page) {
          leaders.add(t);
          work.push(t);
        }
      }
      if (flow === Flow.Branch) {
        leaders.add(pc + d.len);
        pc += d.len;
        continue;
      }
      break;
    }
  }
  if (!decoded.has(entry)) return null;
  // Cut into blocks at leaders and after control transfers.
  const starts = [...leaders].filter((pc) => decoded.has(pc)).sort((a, b) => a - b);
  // The entry block first, then the others in address order (fall-through stays adjacent).
  starts.splice(starts.indexOf(entry), 1);
  const blocks: BasicBlock[] = [];
  let insnCount = 0;
  for (const start of [entry, ...starts]) {
    const insns: GuestInsn[] = [];
    let pc = start;
    for (;;) {
      const d = decoded.get(pc);
      if (!d) break;
      insns.push(d);
      pc += d.len;
      if (flowOf(d.insn, d.kind) !== Flow.Next || leaders.has(pc)) break;
    }
    insnCount += insns.length;
    blocks.push({ start, insns });
  }
  return { entry, blocks, insnCount };
}
