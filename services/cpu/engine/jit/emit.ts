/**
 * RISC-V -> WebAssembly emission: one region becomes one wasm function
 * `(budget: i32, retired: i32) -> i32` over the shared memory that returns the instructions
 * retired. With a jump cache in the layout, an exit whose target has a region tail-calls it
 * (`return_call_indirect` through a table shared by all modules), so control stays in wasm
 * until the budget runs out, a slow path is needed, or another thread asks the hart to stop.
 *
 * Inside a function, the guest registers the region uses live in i64 locals (loaded at entry;
 * those it writes are stored back at the one exit), and the region's blocks are structured
 * wasm (see {@link planRegion}): guest loops are wasm `loop`s, forward edges are direct `br`s,
 * and a block that falls through to the next one in emission order costs nothing; only the
 * entry dispatches on the block index. Back-edges check the budget; chaining also checks the
 * hart's exit request word. Loads and stores take an inline TLB fast path (tag compare and
 * host offset in the shared memory, the TLB set fixed at translation time); a miss, a
 * misaligned access or MMIO leaves the region *before* the access with exit reason
 * {@link ExitReason.Slow}, so the interpreter performs it with exact trap semantics.
 *
 * @example
 * ```ts
 * const module = new RegionModuleBuilder(layout);
 * const index = module.add(region, { load: loadSet, store: storeSet });
 * const exports = module.instantiate(memory);
 * const retired = exports[index](budget, 0);
 * ```
 */
import { AtomicOp, FunctionBody, Op, ValType, WasmModuleBuilder } from "./wasm_builder.ts";
import {
  branchTarget,
  Flow,
  flowOf,
  type GuestInsn,
  jalTarget,
  Kind,
  type Region,
} from "./region.ts";

const { I32, I64 } = ValType;
const TWO32 = 4294967296;

/** Where translated code finds hart state: byte offsets into the shared memory. */
export interface JitLayout {
  /** x0 (8 bytes per register, little-endian). */
  x: number;
  /** The 8-byte pc, written at every exit. */
  pc: number;
  /** An i32: nonzero makes translated code return instead of chaining to the next region. */
  exitRequest: number;
  /** An i32 the region writes its {@link ExitReason} into. */
  exitReason: number;
  /**
   * The jump cache: `mask + 1` entries of 16 bytes (virtual pc as i64, the table slot of its
   * region shifted left by BLOCK_BITS or'ed with the entry block, the region's mode key) from
   * byte `base`. A region whose exit finds its target
   * there, translated for the same mode, tail-calls that region through the imported table
   * instead of returning to TypeScript. Without it, every exit returns.
   */
  jumpCache?: { base: number; mask: number };
  /** Harts on other threads share the memory: FENCE becomes a wasm `atomic.fence`. */
  fences?: boolean;
}

/**
 * Byte index of `pc_lo`'s jump cache entry: (((pc >>> 1) ^ (pc >>> 13)) & mask) * 16. The
 * page bits are folded in because functions at the same page offset are common.
 */
export function jumpCacheOffset(pcLo: number, mask: number): number {
  return (((pcLo >>> 1) ^ (pcLo >>> 13)) & mask) << 4;
}

/**
 * Writes the jump cache entry of `vpc` in the cache of `mask + 1` entries at int32 index
 * `jcIdx` of `i32`: its region's table `slot` and entry `block`, and the region's `mode` key.
 */
export function setJumpCacheEntry(
  i32: Int32Array,
  jcIdx: number,
  mask: number,
  vpc: number,
  slot: number,
  block: number,
  mode: number,
): void {
  const lo = vpc | 0;
  const j = jcIdx + (jumpCacheOffset(lo, mask) >> 2);
  i32[j] = lo;
  i32[j + 1] = Math.floor(vpc / TWO32) | 0;
  i32[j + 2] = (slot << BLOCK_BITS) | block;
  i32[j + 3] = mode;
}

/** One TLB set (load or store, for the mode the region was translated in). */
export interface TlbView {
  /** Byte offsets of entry 0's fields: tag low word, tag high word, host byte offset. */
  tagLo: number;
  tagHi: number;
  host: number;
  /** Bytes between consecutive entries (a power of two). */
  stride: number;
  /** Entries minus one (a power of two minus one): index = (va >> 12) & mask. */
  mask: number;
}

/** The TLB sets a region's loads and stores use. */
export interface RegionTlb {
  load: TlbView;
  store: TlbView;
}

/** Why a region returned. */
export const enum ExitReason {
  /** pc is the next instruction to run (outside the region, or the budget ran out). */
  Continue = 0,
  /** The access at pc needs the slow path: interpret that one instruction. */
  Slow = 1,
  /** A helper asked to leave (trap, mode change, MMIO, WFI...): pc is where to go on. */
  Helper = 2,
}

/**
 * The interpreter as translated code calls it (import `env.step`): executes the one
 * instruction at the record's pc, given the instructions the translated code retired so far
 * (so counters read inside it are exact); returns 0 when the region may go on after it, 1
 * when it must leave (pc in the record is where the hart continues).
 */
export type StepHelper = (retired: number) => number;

/**
 * A compiled region's entry: `retired` is the count so far (0 from TypeScript; chained regions
 * pass theirs on); runs until an exit and returns the total retired.
 */
export type RegionFn = (budget: number, retired: number, block: number) => number;

/** Bits of a jump cache slot word that hold the entry block (the rest: the table slot). */
export const BLOCK_BITS = 10;

const lo32 = (v: number) => v | 0;
const hi32 = (v: number) => Math.floor(v / TWO32) | 0;

/** 64-bit multiply-high and division helpers, emitted once per module. */
interface Helpers {
  mulhu: number;
  mulh: number;
  mulhsu: number;
  div: number;
  divu: number;
  rem: number;
  remu: number;
  divw: number;
  divuw: number;
  remw: number;
  remuw: number;
}

/** Collects regions into one wasm module (several regions per module bound compile cost). */
export class RegionModuleBuilder {
  readonly #m = new WasmModuleBuilder();
  readonly #layout: JitLayout;
  readonly #helpers: Helpers;
  readonly #regionType: number;
  #count = 0;

  readonly #step: number;

  /**
   * Per added region, by block index: whether its function may be entered there (blocks
   * inside a loop's body are reached only through the loop's header).
   */
  readonly enterable: boolean[][] = [];

  /** With `step`, untranslatable instructions and slow accesses call the interpreter. */
  constructor(layout: JitLayout, memoryPages: number, opts: { step?: boolean } = {}) {
    this.#layout = layout;
    this.#m.importMemory({
      module: "env",
      name: "memory",
      initial: memoryPages,
      maximum: memoryPages,
      shared: true,
    });
    if (layout.jumpCache) this.#m.importTable("env", "table", 0);
    this.#regionType = this.#m.type([I32, I32, I32], [I32]);
    this.#step = opts.step ? this.#m.importFunction("env", "step", this.#m.type([I32], [I32])) : -1;
    this.#helpers = emitHelpers(this.#m);
  }

  /**
   * Adds `region`, translated for the mode whose TLB sets are `tlb` (`mode` is its key in the
   * jump cache); returns its index among the module's exports.
   */
  add(region: Region, tlb: RegionTlb, mode = 0): number {
    const emitter = new RegionEmitter(
      region,
      this.#layout,
      tlb,
      this.#helpers,
      this.#regionType,
      this.#step,
    );
    const fn = this.#m.addFunction(this.#regionType, emitter.emit(mode));
    this.enterable.push(emitter.enterable);
    this.#m.exportFunction(`r${this.#count}`, fn);
    return this.#count++;
  }

  /** The module's bytes. */
  build(): Uint8Array<ArrayBuffer> {
    return this.#m.build();
  }

  /**
   * Compiles and instantiates over `memory` (and the chaining `table` when the layout has a
   * jump cache); returns the region functions by index.
   */
  instantiate(
    memory: WebAssembly.Memory,
    table?: WebAssembly.Table,
    step?: StepHelper,
  ): RegionFn[] {
    const module = new WebAssembly.Module(this.build());
    const env: Record<string, WebAssembly.ImportValue> = { memory };
    if (table) env.table = table;
    if (step) env.step = step;
    const inst = new WebAssembly.Instance(module, { env });
    const out: RegionFn[] = [];
    for (let i = 0; i < this.#count; i++) out.push(inst.exports[`r${i}`] as RegionFn);
    return out;
  }
}

function emitHelpers(m: WasmModuleBuilder): Helpers {
  const t64 = m.type([I64, I64], [I64]);
  const t32 = m.type([I32, I32], [I32]);
  const mask32 = (f: FunctionBody) => f.i64Const(-1, 0).op(Op.I64_AND);
  // mulhu(a, b): high 64 bits of the unsigned 128-bit product, from four 32x32 products.
  const hu = new FunctionBody(2);
  const ll = hu.local(I64), lh = hu.local(I64), hl = hu.local(I64);
  const al = (f: FunctionBody) => mask32(f.localGet(0));
  const ah = (f: FunctionBody) => f.localGet(0).i64Const(32, 0).op(Op.I64_SHR_U);
  const bl = (f: FunctionBody) => mask32(f.localGet(1));
  const bh = (f: FunctionBody) => f.localGet(1).i64Const(32, 0).op(Op.I64_SHR_U);
  bl(al(hu)).op(Op.I64_MUL).localSet(ll);
  bh(al(hu)).op(Op.I64_MUL).localSet(lh);
  bl(ah(hu)).op(Op.I64_MUL).localSet(hl);
  bh(ah(hu)).op(Op.I64_MUL); // hh on the stack
  hu.localGet(lh).i64Const(32, 0).op(Op.I64_SHR_U).op(Op.I64_ADD);
  hu.localGet(hl).i64Const(32, 0).op(Op.I64_SHR_U).op(Op.I64_ADD);
  hu.localGet(ll).i64Const(32, 0).op(Op.I64_SHR_U);
  mask32(hu.localGet(lh)).op(Op.I64_ADD);
  mask32(hu.localGet(hl)).op(Op.I64_ADD);
  hu.i64Const(32, 0).op(Op.I64_SHR_U).op(Op.I64_ADD);
  const mulhu = m.addFunction(t64, hu);
  // mulh = mulhu - (a < 0 ? b : 0) - (b < 0 ? a : 0); mulhsu drops the second term.
  const signFix = (both: boolean) => {
    const f = new FunctionBody(2);
    f.localGet(0).localGet(1).call(mulhu);
    f.localGet(0).i64Const(63, 0).op(Op.I64_SHR_S).localGet(1).op(Op.I64_AND).op(Op.I64_SUB);
    if (both) {
      f.localGet(1).i64Const(63, 0).op(Op.I64_SHR_S).localGet(0).op(Op.I64_AND).op(Op.I64_SUB);
    }
    return m.addFunction(t64, f);
  };
  const mulh = signFix(true), mulhsu = signFix(false);
  // Division: RISC-V defines x/0 and MIN/-1, which trap in wasm.
  const division = (wide: boolean, op: number, signed: boolean, rem: boolean) => {
    const f = new FunctionBody(2);
    const T = wide ? I64 : I32;
    const isZero = wide ? Op.I64_EQZ : Op.I32_EQZ;
    f.localGet(1).op(isZero).if(T);
    if (rem) f.localGet(0);
    else if (wide) f.i64Const(-1, -1);
    else f.i32Const(-1);
    f.else();
    if (signed) {
      // b == -1: quotient -a (wrapping, so MIN stays MIN), remainder 0.
      if (wide) f.localGet(1).i64Const(-1, -1).op(Op.I64_EQ);
      else f.localGet(1).i32Const(-1).op(Op.I32_EQ);
      f.if(T);
      if (rem) wide ? f.i64Const(0, 0) : f.i32Const(0);
      else if (wide) f.i64Const(0, 0).localGet(0).op(Op.I64_SUB);
      else f.i32Const(0).localGet(0).op(Op.I32_SUB);
      f.else().localGet(0).localGet(1).op(op).end();
    } else {
      f.localGet(0).localGet(1).op(op);
    }
    f.end();
    return m.addFunction(wide ? t64 : t32, f);
  };
  return {
    mulhu,
    mulh,
    mulhsu,
    div: division(true, Op.I64_DIV_S, true, false),
    divu: division(true, Op.I64_DIV_U, false, false),
    rem: division(true, Op.I64_REM_S, true, true),
    remu: division(true, Op.I64_REM_U, false, true),
    divw: division(false, Op.I32_DIV_S, true, false),
    divuw: division(false, Op.I32_DIV_U, false, false),
    remw: division(false, Op.I32_REM_S, true, true),
    remuw: division(false, Op.I32_REM_U, false, true),
  };
}

/** Emits one region's function body. */
class RegionEmitter {
  readonly #f = new FunctionBody(3);
  readonly #type: number;
  /** Function index of the `step` import, -1 without helpers. */
  readonly #step: number;
  /** Inline instructions before each index of the block being emitted (and its total last). */
  #inlineBefore: number[] = [];
  readonly #region: Region;
  readonly #layout: JitLayout;
  readonly #tlb: RegionTlb;
  readonly #h: Helpers;
  /** Local index of each guest register the region uses (x0 never has one). */
  readonly #reg = new Int32Array(32).fill(-1);
  /**
   * Registers some translated instruction writes: only these are stored back (a register
   * the region only reads, or that only helpers write, is current in the record already).
   */
  readonly #written = new Uint8Array(32);
  readonly #n: number;
  readonly #blk: number;
  readonly #pc: number;
  readonly #reason: number;
  readonly #va: number;
  readonly #valo: number;
  readonly #ti: number;
  readonly #t64: number;
  /** What a slow access leaves to the shared slow exit (see `#access`). */
  readonly #slow: number;
  readonly #blockIndex = new Map<number, number>();
  /** Emission order, loops and labels of the region's blocks. */
  readonly #plan: RegionPlan;
  /** The open wasm control constructs. */
  readonly #ctl = new ControlStack();
  /** Position (in emission order) of the block being emitted; `if`s open inside its code. */
  #p = 0;
  #depth = 0;

  constructor(
    region: Region,
    layout: JitLayout,
    tlb: RegionTlb,
    helpers: Helpers,
    type: number,
    step: number,
  ) {
    this.#type = type;
    this.#step = step;
    this.#region = region;
    this.#layout = layout;
    this.#tlb = tlb;
    this.#h = helpers;
    const f = this.#f;
    for (const b of region.blocks) {
      for (const d of b.insns) {
        for (const r of usedRegisters(d.insn)) {
          if (r !== 0 && this.#reg[r] < 0) this.#reg[r] = f.local(I64);
        }
        if (d.kind === Kind.Inline && writesRd(d.insn)) this.#written[(d.insn >>> 7) & 31] = 1;
      }
    }
    this.#n = 1; // the `retired` parameter counts on
    this.#blk = 2; // the `block` parameter: the entry block (one the plan can enter)
    this.#pc = f.local(I64);
    this.#reason = f.local(I32);
    this.#va = f.local(I64);
    this.#valo = f.local(I32);
    this.#ti = f.local(I32);
    this.#t64 = f.local(I64);
    this.#slow = f.local(I32);
    region.blocks.forEach((b, i) => this.#blockIndex.set(b.start, i));
    this.#plan = planRegion(region, this.#blockIndex);
  }

  emit(mode: number): FunctionBody {
    const f = this.#f, L = this.#layout;
    this.#reload();
    const plan = this.#plan;
    const blocks = this.#region.blocks, n = plan.order.length;
    f.block();
    this.#ctl.push(CTL_EXIT, -1);
    // Slow accesses branch here with (instructions retired before it << 12 | page offset).
    f.block();
    this.#ctl.push(CTL_SLOW, -1);
    // Function-scope labels, the last target outermost; then a `block` whose end is the
    // fallback of the entry dispatch (a block that cannot be entered: leave at the record's pc).
    for (let p = n - 1; p >= 0; p--) {
      if (plan.scope[p] === -1 && plan.labeled[p]) this.#openLabel(plan.order[p]);
    }
    f.block();
    this.#ctl.push(CTL_FALLBACK, -1);
    const table = blocks.map((_, b) => {
      const k = this.#ctl.find(CTL_LABEL, b);
      return k < 0 ? 0 : this.#ctl.depthOf(k);
    });
    f.localGet(this.#blk).brTable(table, 0);
    f.end();
    this.#ctl.pop();
    f.i32Const(0).mem(Op.I64_LOAD, 3, L.pc);
    this.#exitDynamic(ExitReason.Continue);
    for (let p = 0; p < n; p++) {
      const b = plan.order[p];
      if (this.#ctl.topIs(CTL_LABEL, b)) {
        f.end();
        this.#ctl.pop();
      }
      const loop = plan.loopAt[p];
      if (loop >= 0) {
        f.loop();
        this.#ctl.push(CTL_LOOP, b);
        for (let q = plan.loopEnd[loop]; q > p; q--) {
          if (plan.scope[q] === loop && plan.labeled[q]) this.#openLabel(plan.order[q]);
        }
      }
      this.#p = p;
      this.#depth = 0;
      this.#block(blocks[b].insns);
      // Loops whose last block this was, innermost first.
      while (
        this.#ctl.topKind() === CTL_LOOP &&
        plan.loopEnd[plan.loopAt[plan.pos[this.#ctl.topId()]]] === p
      ) {
        f.end();
        this.#ctl.pop();
      }
    }
    f.end(); // the slow-access block: pc and retired count from the code the access left
    this.#ctl.pop();
    f.localGet(this.#n).localGet(this.#slow).i32Const(12).op(Op.I32_SHR_U).op(Op.I32_ADD);
    f.localSet(this.#n);
    const page = this.#region.entry - (lo32(this.#region.entry) & 0xfff);
    f.localGet(this.#slow).i32Const(0xfff).op(Op.I32_AND).op(Op.I64_EXTEND_I32_U);
    f.i64Const(lo32(page), hi32(page)).op(Op.I64_ADD).localSet(this.#pc);
    f.i32Const(ExitReason.Slow).localSet(this.#reason);
    f.end(); // the exit block
    this.#ctl.pop();
    this.#writeBack();
    f.i32Const(0).localGet(this.#pc).mem(Op.I64_STORE, 3, L.pc);
    f.localGet(this.#reason).if();
    f.i32Const(0).localGet(this.#reason).mem(Op.I32_STORE, 2, L.exitReason);
    f.localGet(this.#n).op(Op.RETURN).end();
    const jc = L.jumpCache;
    if (jc) {
      // Chain: within budget, nobody asking to stop, and the target is in the jump cache.
      f.localGet(this.#n).localGet(0).op(Op.I32_LT_S);
      f.i32Const(0).mem(Op.I32_LOAD, 2, L.exitRequest).op(Op.I32_EQZ).op(Op.I32_AND).if();
      f.localGet(this.#pc).op(Op.I32_WRAP_I64).localTee(this.#valo).i32Const(1).op(Op.I32_SHR_U);
      f.localGet(this.#valo).i32Const(13).op(Op.I32_SHR_U).op(Op.I32_XOR);
      f.i32Const(jc.mask).op(Op.I32_AND).i32Const(4).op(Op.I32_SHL).localTee(this.#ti);
      f.mem(Op.I64_LOAD, 3, jc.base).localGet(this.#pc).op(Op.I64_EQ);
      f.localGet(this.#ti).mem(Op.I32_LOAD, 2, jc.base + 12).i32Const(mode).op(Op.I32_EQ);
      f.op(Op.I32_AND).if();
      f.localGet(0).localGet(this.#n);
      f.localGet(this.#ti).mem(Op.I32_LOAD, 2, jc.base + 8).localTee(this.#valo);
      f.i32Const((1 << BLOCK_BITS) - 1).op(Op.I32_AND);
      f.localGet(this.#valo).i32Const(BLOCK_BITS).op(Op.I32_SHR_U);
      f.returnCallIndirect(this.#type);
      f.end().end();
    }
    f.localGet(this.#n);
    return f;
  }

  /** Which of the region's blocks the function can be entered at (see {@link planRegion}). */
  get enterable(): boolean[] {
    const plan = this.#plan;
    return this.#region.blocks.map((_, b) => plan.scope[plan.pos[b]] === -1);
  }

  // --- control ------------------------------------------------------------------------

  #openLabel(block: number): void {
    this.#f.block();
    this.#ctl.push(CTL_LABEL, block);
  }

  #open(type?: number): void {
    this.#f.if(type);
    this.#ctl.push(CTL_IF, -1);
    this.#depth++;
  }

  #close(): void {
    this.#f.end();
    this.#ctl.pop();
    this.#depth--;
  }

  /** Adds `k` to the retired count. */
  #retire(k: number): void {
    if (k !== 0) this.#f.localGet(this.#n).i32Const(k).op(Op.I32_ADD).localSet(this.#n);
  }

  /** Leaves the region with pc = the i64 on the stack. */
  #exitDynamic(reason: ExitReason): void {
    const f = this.#f;
    f.localSet(this.#pc);
    if (reason !== ExitReason.Continue) f.i32Const(reason).localSet(this.#reason);
    f.br(this.#ctl.depthOf(0));
  }

  #exitTo(pc: number, reason: ExitReason): void {
    this.#f.i64Const(lo32(pc), hi32(pc));
    this.#exitDynamic(reason);
  }

  /**
   * Continues at guest `pc`: a block of this region (a forward `br` to the label that ends
   * where its code starts, or a back-edge to its loop), or an exit when the structure has no
   * label for it (an edge into the middle of a loop) or it is outside the region.
   */
  #goto(pc: number, fallthrough: boolean): void {
    const j = this.#blockIndex.get(pc);
    if (j === undefined) return this.#exitTo(pc, ExitReason.Continue);
    const pj = this.#plan.pos[j];
    if (fallthrough && pj === this.#p + 1 && this.#depth === 0) return;
    const f = this.#f;
    if (pj > this.#p) {
      const k = this.#ctl.find(CTL_LABEL, j);
      if (k < 0) return this.#exitTo(pc, ExitReason.Continue);
      return void f.br(this.#ctl.depthOf(k));
    }
    const k = this.#ctl.find(CTL_LOOP, j);
    if (k < 0) return this.#exitTo(pc, ExitReason.Continue);
    // A back-edge: return when the budget is spent (at most a chunk of the hart's run loop,
    // so a kick from another thread waits no longer; chaining checks the request word).
    f.localGet(this.#n).localGet(0).op(Op.I32_GE_S);
    this.#open();
    this.#exitTo(pc, ExitReason.Continue);
    this.#close();
    f.br(this.#ctl.depthOf(k));
  }

  #block(insns: GuestInsn[]): void {
    const before = [0];
    for (const d of insns) before.push(before.at(-1)! + (d.kind === Kind.Inline ? 1 : 0));
    this.#inlineBefore = before;
    const total = before[insns.length];
    for (let k = 0; k < insns.length; k++) {
      const d = insns[k];
      const last = k === insns.length - 1;
      const flow = flowOf(d.insn, d.kind);
      if (flow === Flow.Next) {
        if (d.kind === Kind.Helper) this.#helper(d, k, false);
        else this.#simple(d, k);
        if (last) {
          this.#retire(total);
          this.#goto(d.pc + d.len, true);
        }
        continue;
      }
      if (flow === Flow.Exit) {
        this.#helper(d, k, true);
        continue;
      }
      this.#retire(total);
      if (flow === Flow.Branch) {
        this.#condition(d.insn);
        this.#open();
        this.#goto(branchTarget(d.pc, d.insn), false);
        this.#close();
        this.#goto(d.pc + d.len, true);
      } else if (flow === Flow.Jump) {
        this.#link(d);
        this.#goto(jalTarget(d.pc, d.insn), false);
      } else {
        // JALR: target from rs1 before rd is written (rd may equal rs1).
        const f = this.#f;
        this.#rs((d.insn >>> 15) & 31).i64ConstS32(d.insn >> 20).op(Op.I64_ADD);
        f.i64Const(-2, -1).op(Op.I64_AND).localSet(this.#t64);
        this.#link(d);
        f.localGet(this.#t64);
        this.#exitDynamic(ExitReason.Continue);
      }
    }
  }

  /**
   * Calls the interpreter for instruction `k` (registers written back before, reloaded
   * after). Leaves the region when it says so, or always with `exit`.
   */
  #helper(d: GuestInsn, k: number, exit: boolean): void {
    const f = this.#f, L = this.#layout;
    if (this.#step < 0) throw new Error("a helper instruction in a region without helpers");
    // An instruction reads x registers only through rs1/rs2 and writes only rd: just those
    // cross the boundary (the exit path writes back the rest). rd is written back too, since
    // its field may name an f register, and then reloading it must give the x value back.
    const insn = d.insn;
    this.#writeBackReg((insn >>> 15) & 31);
    this.#writeBackReg((insn >>> 20) & 31);
    this.#writeBackReg((insn >>> 7) & 31);
    f.i32Const(0).i64Const(lo32(d.pc), hi32(d.pc)).mem(Op.I64_STORE, 3, L.pc);
    f.localGet(this.#n).i32Const(this.#inlineBefore[k]).op(Op.I32_ADD).call(this.#step);
    f.localSet(this.#valo);
    this.#reloadReg((insn >>> 7) & 31);
    if (!exit) {
      f.localGet(this.#valo);
      this.#open();
    }
    this.#retire(this.#inlineBefore[k]);
    f.i32Const(0).mem(Op.I64_LOAD, 3, L.pc);
    this.#exitDynamic(ExitReason.Helper);
    if (!exit) this.#close();
  }

  #writeBackReg(r: number): void {
    if (r !== 0 && this.#written[r]) {
      this.#f.i32Const(0).localGet(this.#reg[r]).mem(Op.I64_STORE, 3, this.#layout.x + 8 * r);
    }
  }

  #reloadReg(r: number): void {
    if (r !== 0 && this.#reg[r] >= 0) {
      this.#f.i32Const(0).mem(Op.I64_LOAD, 3, this.#layout.x + 8 * r).localSet(this.#reg[r]);
    }
  }

  #writeBack(): void {
    const f = this.#f, x = this.#layout.x;
    for (let r = 1; r < 32; r++) {
      if (this.#written[r]) f.i32Const(0).localGet(this.#reg[r]).mem(Op.I64_STORE, 3, x + 8 * r);
    }
  }

  #reload(): void {
    const f = this.#f, x = this.#layout.x;
    for (let r = 1; r < 32; r++) {
      if (this.#reg[r] >= 0) f.i32Const(0).mem(Op.I64_LOAD, 3, x + 8 * r).localSet(this.#reg[r]);
    }
  }

  /** rd = pc + len for JAL/JALR. */
  #link(d: GuestInsn): void {
    const rd = (d.insn >>> 7) & 31;
    if (rd === 0) return;
    const l = d.pc + d.len;
    this.#f.i64Const(lo32(l), hi32(l)).localSet(this.#reg[rd]);
  }

  /** Pushes the branch condition (i32). */
  #condition(insn: number): void {
    const ops = [Op.I64_EQ, Op.I64_NE, 0, 0, Op.I64_LT_S, Op.I64_GE_S, Op.I64_LT_U, Op.I64_GE_U];
    this.#rs((insn >>> 15) & 31);
    this.#rs((insn >>> 20) & 31);
    this.#f.op(ops[(insn >>> 12) & 7]);
  }

  // --- registers ----------------------------------------------------------------------

  #rs(r: number): FunctionBody {
    return r === 0 ? this.#f.i64Const(0, 0) : this.#f.localGet(this.#reg[r]);
  }

  #setRd(rd: number): void {
    if (rd === 0) this.#f.op(Op.DROP);
    else this.#f.localSet(this.#reg[rd]);
  }

  // --- straight-line instructions -------------------------------------------------------

  #simple(d: GuestInsn, k: number): void {
    const insn = d.insn, f = this.#f;
    const rd = (insn >>> 7) & 31, rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
    const f3 = (insn >>> 12) & 7, f7 = insn >>> 25, imm = insn >> 20;
    switch ((insn >>> 2) & 31) {
      case 4: { // OP-IMM
        if (rd === 0) return;
        this.#rs(rs1);
        const sh = imm & 63;
        switch (f3) {
          case 0:
            f.i64ConstS32(imm).op(Op.I64_ADD);
            break;
          case 1:
            f.i64Const(sh, 0).op(Op.I64_SHL);
            break;
          case 2:
            f.i64ConstS32(imm).op(Op.I64_LT_S).op(Op.I64_EXTEND_I32_U);
            break;
          case 3:
            f.i64ConstS32(imm).op(Op.I64_LT_U).op(Op.I64_EXTEND_I32_U);
            break;
          case 4:
            f.i64ConstS32(imm).op(Op.I64_XOR);
            break;
          case 5:
            f.i64Const(sh, 0).op((insn >>> 26) === 0 ? Op.I64_SHR_U : Op.I64_SHR_S);
            break;
          case 6:
            f.i64ConstS32(imm).op(Op.I64_OR);
            break;
          default:
            f.i64ConstS32(imm).op(Op.I64_AND);
        }
        return this.#setRd(rd);
      }
      case 12: { // OP
        if (rd === 0) return;
        this.#rs(rs1);
        this.#rs(rs2);
        if (f7 === 1) {
          const h = this.#h;
          const mops = [0, h.mulh, h.mulhsu, h.mulhu, h.div, h.divu, h.rem, h.remu];
          if (f3 === 0) f.op(Op.I64_MUL);
          else f.call(mops[f3]);
        } else if (f7 === 0x20) {
          f.op(f3 === 0 ? Op.I64_SUB : Op.I64_SHR_S);
        } else {
          const ops = [
            Op.I64_ADD,
            Op.I64_SHL,
            Op.I64_LT_S,
            Op.I64_LT_U,
            Op.I64_XOR,
            Op.I64_SHR_U,
            Op.I64_OR,
            Op.I64_AND,
          ];
          f.op(ops[f3]);
          if (f3 === 2 || f3 === 3) f.op(Op.I64_EXTEND_I32_U);
        }
        return this.#setRd(rd);
      }
      case 6: { // OP-IMM-32
        if (rd === 0) return;
        this.#rs(rs1).op(Op.I32_WRAP_I64);
        if (f3 === 0) f.i32Const(imm).op(Op.I32_ADD);
        else {f.i32Const(imm & 31).op(
            f3 === 1 ? Op.I32_SHL : f7 === 0 ? Op.I32_SHR_U : Op.I32_SHR_S,
          );}
        f.op(Op.I64_EXTEND_I32_S);
        return this.#setRd(rd);
      }
      case 14: { // OP-32
        if (rd === 0) return;
        this.#rs(rs1).op(Op.I32_WRAP_I64);
        this.#rs(rs2).op(Op.I32_WRAP_I64);
        if (f7 === 1) {
          const h = this.#h;
          if (f3 === 0) f.op(Op.I32_MUL);
          else f.call([0, 0, 0, 0, h.divw, h.divuw, h.remw, h.remuw][f3]);
        } else if (f3 === 0) f.op(f7 === 0 ? Op.I32_ADD : Op.I32_SUB);
        else f.op(f3 === 1 ? Op.I32_SHL : f7 === 0 ? Op.I32_SHR_U : Op.I32_SHR_S);
        f.op(Op.I64_EXTEND_I32_S);
        return this.#setRd(rd);
      }
      case 13: // LUI
        if (rd !== 0) f.i64ConstS32(insn & 0xfffff000).localSet(this.#reg[rd]);
        return;
      case 5: { // AUIPC
        if (rd === 0) return;
        const v = d.pc + (insn & 0xfffff000);
        f.i64Const(lo32(v), hi32(v)).localSet(this.#reg[rd]);
        return;
      }
      case 3: // FENCE: a single hart sees its own accesses in order; other threads need one
        if (this.#layout.fences) f.atomic(AtomicOp.FENCE);
        return;
      case 0:
        return this.#load(d, k, rd, rs1, f3, imm);
      case 8:
        return this.#store(d, k, rs1, rs2, f3, ((insn >> 25) << 5) | ((insn >>> 7) & 31));
      default:
        throw new Error(`untranslatable instruction 0x${(insn >>> 0).toString(16)} in a region`);
    }
  }

  /**
   * The inline TLB check: computes va = rs1 + imm; on a miss or misaligned access leaves the
   * region before instruction `k` (the interpreter performs it); else runs `fast` with the
   * host byte address (i32) on the stack.
   */
  #access(
    d: GuestInsn,
    k: number,
    rs1: number,
    imm: number,
    size: number,
    set: TlbView,
    fast: () => void,
  ) {
    const f = this.#f;
    this.#rs(rs1).i64ConstS32(imm).op(Op.I64_ADD).localTee(this.#va);
    f.op(Op.I32_WRAP_I64).localTee(this.#valo);
    f.i32Const(12).op(Op.I32_SHR_U).i32Const(set.mask).op(Op.I32_AND);
    f.i32Const(Math.log2(set.stride)).op(Op.I32_SHL).localTee(this.#ti);
    if (set.tagHi === set.tagLo + 4) {
      f.mem(Op.I64_LOAD, 2, set.tagLo);
    } else {
      f.mem(Op.I64_LOAD32_U, 2, set.tagLo);
      f.localGet(this.#ti).mem(Op.I64_LOAD32_U, 2, set.tagHi).i64Const(32, 0).op(Op.I64_SHL);
      f.op(Op.I64_OR);
    }
    // One compare checks the page and the alignment: tags have zero alignment bits (and
    // their flag bits above them, see TLB_MMIO), so a misaligned access never matches.
    f.localGet(this.#va).i64Const(~0xfff | (size - 1), -1).op(Op.I64_AND).op(Op.I64_NE);
    // A miss leaves through the shared slow exit (a few bytes here, rare at run time) rather
    // than calling the interpreter inline: wasm size is what compile time grows with.
    this.#open();
    f.i32Const((this.#inlineBefore[k] << 12) | (lo32(d.pc) & 0xfff)).localSet(this.#slow);
    f.br(this.#ctl.depthOf(this.#ctl.find(CTL_SLOW, -1)));
    this.#close();
    f.localGet(this.#ti).mem(Op.I32_LOAD, 2, set.host);
    f.localGet(this.#valo).i32Const(0xfff).op(Op.I32_AND).op(Op.I32_ADD);
    fast();
  }

  #load(d: GuestInsn, k: number, rd: number, rs1: number, f3: number, imm: number): void {
    const sizes = [1, 2, 4, 8, 1, 2, 4];
    const ops = [
      Op.I64_LOAD8_S,
      Op.I64_LOAD16_S,
      Op.I64_LOAD32_S,
      Op.I64_LOAD,
      Op.I64_LOAD8_U,
      Op.I64_LOAD16_U,
      Op.I64_LOAD32_U,
    ];
    const size = sizes[f3];
    this.#access(d, k, rs1, imm, size, this.#tlb.load, () => {
      this.#f.mem(ops[f3], Math.log2(size), 0);
      this.#setRd(rd);
    });
  }

  #store(d: GuestInsn, k: number, rs1: number, rs2: number, f3: number, imm: number): void {
    const size = 1 << f3;
    this.#access(d, k, rs1, imm, size, this.#tlb.store, () => {
      this.#rs(rs2);
      this.#f.mem([Op.I64_STORE8, Op.I64_STORE16, Op.I64_STORE32, Op.I64_STORE][f3], f3, 0);
    });
  }
}

const CTL_EXIT = 0, CTL_LABEL = 1, CTL_LOOP = 2, CTL_IF = 3, CTL_SLOW = 4, CTL_FALLBACK = 5;

/** The wasm control constructs open at a point of emission, outermost first. */
class ControlStack {
  readonly #kind: number[] = [];
  readonly #id: number[] = [];

  push(kind: number, id: number): void {
    this.#kind.push(kind);
    this.#id.push(id);
  }

  pop(): void {
    this.#kind.pop();
    this.#id.pop();
  }

  topIs(kind: number, id: number): boolean {
    const t = this.#kind.length - 1;
    return t >= 0 && this.#kind[t] === kind && this.#id[t] === id;
  }

  topKind(): number {
    return this.#kind.at(-1) ?? -1;
  }

  topId(): number {
    return this.#id.at(-1) ?? -1;
  }

  /** Stack index of the innermost construct of `kind` for `id`, or -1. */
  find(kind: number, id: number): number {
    for (let k = this.#kind.length - 1; k >= 0; k--) {
      if (this.#kind[k] === kind && this.#id[k] === id) return k;
    }
    return -1;
  }

  /** The `br` depth of stack index `k` from the innermost construct. */
  depthOf(k: number): number {
    return this.#kind.length - 1 - k;
  }
}

/**
 * How a region's blocks become structured wasm: an emission order (reverse postorder from the
 * entry, so forward edges go forward and every loop header precedes its body), loops as
 * position intervals [header, last back-edge source] (extended until properly nested), and
 * which blocks get a forward label. A forward edge is a direct `br` when its target's
 * innermost loop also holds the source; an edge into the middle of a loop from outside it
 * leaves the region instead, and so only blocks outside every loop body can be entered.
 */
export interface RegionPlan {
  /** Block indexes in emission order. */
  order: number[];
  /** Position of each block index in `order`. */
  pos: number[];
  /** Loop whose header is at each position, or -1. */
  loopAt: number[];
  /** Last position of each loop (by loop id = its header position's entry in `loopAt`). */
  loopEnd: number[];
  /** Innermost loop whose body (after the header) holds each position, or -1 (function). */
  scope: number[];
  /** Positions that are targets of a structured forward edge or function-scope entries. */
  labeled: boolean[];
}

/** Plans the structure of `region` (see {@link RegionPlan}). */
export function planRegion(region: Region, index: Map<number, number>): RegionPlan {
  const blocks = region.blocks, nb = blocks.length;
  const succ: number[][] = blocks.map((b) => {
    const d = b.insns[b.insns.length - 1];
    const out: number[] = [];
    const add = (pc: number) => {
      const j = index.get(pc);
      if (j !== undefined) out.push(j);
    };
    const flow = flowOf(d.insn, d.kind);
    if (flow === Flow.Next) add(d.pc + d.len);
    else if (flow === Flow.Branch) {
      add(d.pc + d.len);
      add(branchTarget(d.pc, d.insn));
    } else if (flow === Flow.Jump) add(jalTarget(d.pc, d.insn));
    return out;
  });
  // Reverse postorder by an iterative depth-first walk from block 0 (the entry). Successors
  // are visited in reverse so that the fall-through successor tends to come right after.
  const post: number[] = [], seen = new Uint8Array(nb);
  const stack: number[] = [0], next: number[] = [0];
  seen[0] = 1;
  while (stack.length > 0) {
    const b = stack[stack.length - 1], i = next[next.length - 1];
    const s = succ[b];
    if (i < s.length) {
      next[next.length - 1]++;
      const c = s[s.length - 1 - i];
      if (!seen[c]) {
        seen[c] = 1;
        stack.push(c);
        next.push(0);
      }
    } else {
      post.push(b);
      stack.pop();
      next.pop();
    }
  }
  // Blocks only reachable through edges the walk does not follow (none today) go last.
  for (let b = 0; b < nb; b++) if (!seen[b]) post.unshift(b);
  const order = post.reverse();
  const pos = new Array<number>(nb);
  order.forEach((b, p) => pos[b] = p);
  // Loops: every retreating edge u -> v (pos[v] <= pos[u]) makes v a header, ending at u.
  const end = new Array<number>(nb).fill(-1);
  for (let b = 0; b < nb; b++) {
    for (const c of succ[b]) if (pos[c] <= pos[b]) end[pos[c]] = Math.max(end[pos[c]], pos[b]);
  }
  // Proper nesting: a loop starting inside another and ending after it extends the outer one.
  const open: number[] = [];
  for (let p = 0; p < nb; p++) {
    while (open.length > 0 && end[open[open.length - 1]] < p) open.pop();
    if (end[p] < 0) continue;
    for (const q of open) if (end[q] < end[p]) end[q] = end[p];
    open.push(p);
  }
  const loopAt = new Array<number>(nb).fill(-1), loopEnd: number[] = [];
  const scope = new Array<number>(nb).fill(-1);
  const stackL: number[] = [];
  for (let p = 0; p < nb; p++) {
    while (stackL.length > 0 && loopEnd[stackL[stackL.length - 1]] < p) stackL.pop();
    scope[p] = stackL.length > 0 ? stackL[stackL.length - 1] : -1;
    if (end[p] >= 0) {
      loopAt[p] = loopEnd.length;
      loopEnd.push(end[p]);
      stackL.push(loopAt[p]);
    }
  }
  const loopStart: number[] = [];
  loopAt.forEach((l, p) => {
    if (l >= 0) loopStart[l] = p;
  });
  // A forward edge is structured when the target's scope is the function or holds the source.
  const labeled = scope.map((s) => s === -1);
  for (let b = 0; b < nb; b++) {
    for (const c of succ[b]) {
      const pc = pos[c], s = scope[pc];
      if (pc <= pos[b]) continue;
      if (s === -1 || (loopStart[s] <= pos[b] && pos[b] <= loopEnd[s])) labeled[pc] = true;
    }
  }
  return { order, pos, loopAt, loopEnd, scope, labeled };
}

/** True when the translated form of `insn` writes its rd field's x register. */
function writesRd(insn: number): boolean {
  switch ((insn >>> 2) & 31) {
    case 0:
    case 4:
    case 5:
    case 6:
    case 12:
    case 13:
    case 14:
    case 25:
    case 27:
      return true;
    default:
      return false;
  }
}

/** Registers an instruction reads or writes (x0 included; callers skip it). */
function usedRegisters(insn: number): number[] {
  const rd = (insn >>> 7) & 31, rs1 = (insn >>> 15) & 31, rs2 = (insn >>> 20) & 31;
  switch ((insn >>> 2) & 31) {
    case 4:
    case 6:
    case 0:
    case 25:
      return [rd, rs1];
    case 12:
    case 14:
      return [rd, rs1, rs2];
    case 13:
    case 5:
    case 27:
      return [rd];
    case 24:
    case 8:
      return [rs1, rs2];
    default:
      return [];
  }
}
