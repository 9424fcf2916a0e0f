/**
 * The GDB remote-protocol command handler and execution controller of a machine's harts, one
 * gdb thread per hart (thread id = hart id + 1), all-stop: when one hart stops, every hart is
 * held. The machine's run loop calls `runBatch(budget, hart)` instead of `hart.run` (see
 * MachineOptions.debug), so this is where harts are held while gdb has them stopped, one is
 * single-stepped (the others stay still, as with gdb's scheduler-locking), or run with
 * breakpoints.
 *
 * Breakpoints (Z0 software, Z1 hardware) are a pc check before every instruction while any is
 * set, with the hart forced onto its interpreter path: exact under the translator (whose
 * regions only check their budget at back-edges) and guest memory is never patched, at the
 * cost of interpreter speed while breakpoints exist. Without breakpoints a continue runs the
 * hart at full speed. Watchpoints (Z2 write, Z3 read, Z4 access) decode the data access of
 * every instruction before it runs, the same way, and stop after an instruction whose access
 * overlapped a watched range. None of this uses the hart's Sdtrig triggers: those belong to
 * the guest, and firing one traps it.
 */
import { StopReason } from "../engine.ts";
import { HartLayout } from "../hart/state.ts";
import { Csr } from "../hart/csr_numbers.ts";
import { type RegisterDef, riscv64Registers, targetXml } from "./target_xml.ts";
import { debugTranslate } from "./debug_mmu.ts";
import { decodeAccess } from "./access_decode.ts";
import { fromHex, leHex, parseLeHex, toHex, unescapeBinary } from "./rsp_packet.ts";

/** The hart operations the stub needs (the Hart class has them all). */
export interface DebugHart {
  getReg(i: number): bigint;
  setReg(i: number, v: bigint): void;
  getPc(): bigint;
  setPc(v: bigint): void;
  getFReg(i: number): bigint;
  readCsr(n: number): bigint;
  writeCsr(n: number, v: bigint): void;
  /** Runs; with `resume`, on from where the last run stopped as if the two were one call. */
  run(budget: number, resume?: boolean): StopReason;
  /** Budget units the last `run()` used (one per instruction attempted). */
  readonly ran?: number;
  readonly pc: number;
  readonly priv?: number;
  /** The hart's TLB-fill switch: false keeps it on the interpreter path (exact steps). */
  tlbFillAllowed?: boolean;
  /** Recomputes `tlbFillAllowed` from the armed triggers. */
  triggersChanged?(): void;
}

/** Guest memory as the stub reads and writes it (physical addresses). */
export interface DebugMemory {
  inRam(paddr: number, len: number): boolean;
  readPhys(paddr: number, len: number): Uint8Array;
  writePhys(paddr: number, bytes: Uint8Array): void;
  readonly i32: Int32Array;
  hartBase(id: number): number;
}

/** What the stub is attached to. */
export interface DebugTarget {
  /** The harts, by hart id (gdb thread id = hart id + 1). */
  harts: readonly DebugHart[];
  mem: DebugMemory;
  /** gdb's `k`: end the emulator. */
  kill(): void;
  /** The hart is held for gdb: stop guest time (optional). */
  hold?(): void;
  /** The hart runs again: guest time goes on from where it stopped. */
  release?(): void;
}

/** What a replay tells the stub before a hart's next unit: go on, stop (arrived), or drop the batch. */
export type ReverseVerdict = "run" | "stop" | "begin" | "rewind";

/**
 * A deterministic replay the stub can run backwards (services/cpu/replay's TimeTravel). The
 * stub then never changes how a batch runs: it splits a hart's batch into resumed runs
 * (`run(n, true)`), so interrupts come where they came in the recording.
 */
export interface ReverseControl {
  /** A reverse command asked for an earlier point: the current batch is dropped. */
  readonly rewinding: boolean;
  /**
   * Before hart `id`'s next unit at `pc` while travelling: "run" on, "stop" (arrived),
   * "begin" (arrived at the start of the recording), "rewind" (drop the batch).
   */
  before(id: number, pc: number): ReverseVerdict;
  /** How many units hart `id` may run now (at most `want`, at least 1). */
  limit(id: number, want: number): number;
  /** Hart `id` used `n` units. */
  ran(id: number, n: number): void;
  /** reverse-stepi of hart `id`; false when it is at the start of the recording. */
  reverseStep(id: number): boolean;
  /** reverse-continue: to the last breakpoint hit before now, or to the start. */
  reverseContinue(breakpoints: ReadonlySet<number>): void;
  /**
   * Before a batch's first unit on a continue without breakpoints or watchpoints, with gdb
   * attached: true once
   * when the replay has reached the top of the recording's last batch (gdb is told
   * `replaylog:end` and may go back from there; continue again to run the guest to its end).
   */
  atEnd?(): boolean;
  /** True while reverse-continue scans a segment (watched accesses are reported to it). */
  scanning?(): boolean;
  /** During a scan: hart `id`'s last `n` units made an access watchpoint `why` watches. */
  watched?(id: number, n: number, why: string): void;
  /** After "stop": what gdb is told stopped it there (a watchpoint's `watch:ADDR;`), or "". */
  arrivedWhy?(): string;
}

type Mode = "stopped" | "continue" | "step" | "travel";

/** A watchpoint: type 2 write, 3 read, 4 access (gdb's Z numbering). */
interface Watch {
  type: 2 | 3 | 4;
  pa: number;
  gdbAddr: number;
  len: number;
}

/** What the instruction about to run will access. */
interface PendingAccess {
  pieces: [number, number][];
  read: boolean;
  write: boolean;
  /** The pc after it, when it completes. */
  next: number;
}

/** Largest `m` read answered (bytes); gdb splits larger reads by our PacketSize. */
const MAX_READ = 0x800;

/** PacketSize announced in qSupported (hex). */
export const PACKET_SIZE = 0x1000;

const SIGINT = 2, SIGTRAP = 5;

/**
 * One debugged hart's gdb session state.
 *
 * @example
 * ```ts
 * declare const target: DebugTarget;
 * const stub = new GdbStub(target, { waitForClient: true });
 * stub.connect((reply) => console.log(reply)); // replies are unframed payloads
 * stub.handlePacket("?"); // sends "T05thread:01;"
 * ```
 */
export class GdbStub {
  readonly registers: RegisterDef[] = riscv64Registers();
  readonly xml: string = targetXml(this.registers);
  #target: DebugTarget;
  #mode: Mode;
  #send: ((payload: string) => void) | undefined;
  #wake: (() => void) | undefined;
  #breakpoints = new Set<number>();
  /** Watchpoints by "type,addr,len": the physical range watched and gdb's address for it. */
  #watches = new Map<string, Watch>();
  /** This hart's next instruction runs even if a breakpoint sits on it (gdb resumed from it). */
  #resumeOver = -1;
  /** Hart whose registers and memory view `g`, `p`, `m`... use (gdb's `Hg`). */
  #g = 0;
  /** Hart a step without a thread steps (gdb's `Hc`), and the one being stepped. */
  #c = 0;
  /** The last `Hc` named no thread: a reverse step goes back on the thread gdb looks at. */
  #cAny = false;
  /** Hart that stopped last (its thread is in the stop reply). */
  #last = 0;
  #exited = false;
  /** Set when debugging a replay: reverse execution, batches kept as recorded. */
  #reverse: ReverseControl | undefined;
  /** Replay: the hart whose step (or watchpoint hit) is done; it stops before its next unit. */
  #doneHart = -1;
  #doneWhy = "";
  /** Commands that threw inside the handler (answered E01): a bug count, zero when all is well. */
  internalErrors = 0;

  constructor(
    target: DebugTarget,
    opts: { waitForClient?: boolean; reverse?: ReverseControl } = {},
  ) {
    this.#target = target;
    this.#reverse = opts.reverse;
    this.#mode = "continue";
    if (opts.waitForClient) this.#setMode("stopped");
  }

  /** True while the hart is held for gdb. */
  get stopped(): boolean {
    return this.#mode === "stopped";
  }

  /** A client connected: the hart stops (as QEMU does) and replies go to `send`. */
  connect(send: (payload: string) => void): void {
    this.#send = send;
    if (!this.#exited) this.#setMode("stopped"); // after the exit nothing may wait any more
  }

  /** The client went away (detach, kill or a dropped connection): breakpoints go, hart runs. */
  disconnect(): void {
    this.#send = undefined;
    this.#breakpoints.clear();
    this.#watches.clear();
    this.#resume("continue");
  }

  /** The guest ended: the client learns the exit code (`W`), and nothing waits any more. */
  targetExited(code: number): void {
    if (this.#exited) return;
    this.#exited = true;
    this.#send?.(`W${(code & 0xff).toString(16).padStart(2, "0")}`);
    this.disconnect();
  }

  /** Ctrl-C from the client: stop now and say so. */
  interrupt(): void {
    if (this.#mode === "stopped") return;
    this.#setMode("stopped");
    this.#reportStop(SIGINT);
  }

  /**
   * Runs the hart for up to `budget` instructions as gdb allows (the machine's batch). Waits
   * while the hart is stopped.
   */
  async runBatch(budget: number, id = 0): Promise<StopReason> {
    if (this.#reverse) return await this.#replayBatch(budget, id, this.#reverse);
    const hart = this.#target.harts[id];
    while (this.#mode === "stopped") await new Promise<void>((r) => this.#wake = r);
    if (this.#mode === "step") {
      if (id !== this.#c) return StopReason.Budget; // the others stay still while one steps
      const access = this.#watches.size ? this.#nextAccess(id) : null;
      const reason = this.#stepInstruction(id);
      this.#resumeOver = -1;
      this.#stopAt(id);
      this.#send?.(this.#stopReply(SIGTRAP, this.#watchHit(access, id)));
      return reason === StopReason.Halted ? reason : StopReason.Budget;
    }
    if (this.#breakpoints.size === 0 && this.#watches.size === 0) return hart.run(budget);
    return this.#exact(id, () => {
      for (let n = 0; n < budget; n++) {
        if (this.#resumeOver !== id && this.#breakpoints.has(hart.pc)) {
          this.#stopAt(id);
          this.#reportStop(SIGTRAP);
          return StopReason.Budget;
        }
        if (this.#resumeOver === id) this.#resumeOver = -1;
        const access = this.#watches.size ? this.#nextAccess(id) : null;
        const reason = hart.run(1);
        const hit = this.#watchHit(access, id);
        if (hit !== "") {
          this.#stopAt(id);
          this.#send?.(this.#stopReply(SIGTRAP, hit));
          return reason === StopReason.Halted ? reason : StopReason.Budget;
        }
        if (reason !== StopReason.Budget) return reason;
      }
      return StopReason.Budget;
    });
  }

  /**
   * A replay's batch: the same `budget` units as in the recording, in resumed runs, stopping
   * between two of them for gdb (breakpoint, step done, travel arrived). A step or watchpoint
   * hit on the batch's last unit stops before the hart's next unit, in its next batch.
   */
  async #replayBatch(budget: number, id: number, rc: ReverseControl): Promise<StopReason> {
    const hart = this.#target.harts[id];
    let used = 0;
    while (used < budget) {
      if (rc.rewinding) return StopReason.Budget;
      if (this.#mode === "travel") {
        const v = rc.before(id, hart.pc);
        if (v === "rewind") return StopReason.Budget;
        if (v !== "run") {
          this.#resumeOver = -1;
          this.#stopAt(id);
          const why = v === "begin" ? "replaylog:begin;" : rc.arrivedWhy?.() ?? "";
          this.#send?.(this.#stopReply(SIGTRAP, why));
        }
      } else if (this.#mode !== "stopped") {
        if (
          used === 0 && this.#send !== undefined && this.#mode === "continue" &&
          this.#breakpoints.size === 0 && this.#watches.size === 0 && rc.atEnd?.()
        ) {
          this.#doneHart = -1;
          this.#stopAt(id);
          this.#send?.(this.#stopReply(SIGTRAP, "replaylog:end;"));
        } else if (this.#doneHart === id) {
          this.#doneHart = -1;
          this.#stopAt(id);
          this.#send?.(this.#stopReply(SIGTRAP, this.#doneWhy));
        } else if (
          this.#mode === "continue" && this.#resumeOver !== id && this.#breakpoints.has(hart.pc)
        ) {
          this.#stopAt(id);
          this.#reportStop(SIGTRAP);
        }
      }
      while (this.#mode === "stopped") await new Promise<void>((r) => this.#wake = r);
      if (rc.rewinding) return StopReason.Budget;
      const stepping = this.#mode === "step" && id === this.#c;
      const travel = this.#mode === "travel";
      const watching = this.#watches.size > 0 && (!travel || rc.scanning?.() === true);
      let k = budget - used;
      if (this.#mode === "travel") k = rc.limit(id, k);
      else if (stepping || watching || (this.#mode === "continue" && this.#breakpoints.size)) {
        k = 1;
      }
      const access = watching ? this.#nextAccess(id) : null;
      const reason = hart.run(k, used > 0);
      const n = hart.ran ?? k;
      rc.ran(id, n);
      used += n;
      if (this.#resumeOver === id) this.#resumeOver = -1;
      const hit = this.#watchHit(access, id);
      if (travel) {
        if (hit !== "") rc.watched?.(id, n, hit);
      } else if (stepping || hit !== "") {
        this.#doneHart = id;
        this.#doneWhy = hit;
      }
      if (reason !== StopReason.Budget) return reason;
      if (n === 0) return StopReason.Budget;
    }
    return StopReason.Budget;
  }

  /** Hart `id` stopped: every hart is held, and gdb looks at that one. */
  #stopAt(id: number): void {
    this.#last = this.#g = this.#c = id;
    this.#setMode("stopped");
  }

  /**
   * Runs the instruction at pc, with interrupts held off as QEMU's default step does
   * (SSTEP_NOIRQ): mie reads 0 for the step unless the instruction is a CSR access (it might
   * be the one writing mie), and the pending interrupt is taken after the next resume.
   */
  #stepInstruction(id: number): StopReason {
    const hart = this.#target.harts[id];
    const insn = this.#readMem(hart.pc, 4, id);
    const csrAccess = insn === null || ((insn[0] & 0x7f) === 0x73 && ((insn[1] >> 4) & 7) !== 0);
    let mie = 0n;
    if (!csrAccess) {
      mie = hart.readCsr(Csr.MIE);
      if (mie !== 0n) hart.writeCsr(Csr.MIE, 0n);
    }
    try {
      return this.#exact(id, () => hart.run(1));
    } finally {
      if (mie !== 0n) hart.writeCsr(Csr.MIE, mie);
    }
  }

  /** The data access the instruction at pc will make (physical pieces), null for none. */
  #nextAccess(id: number): PendingAccess | null {
    const hart = this.#target.harts[id], pc = hart.pc;
    const low = this.#readMem(pc, 2, id);
    if (!low) return null;
    const compressed = (low[0] & 3) !== 3;
    const bytes = compressed ? low : this.#readMem(pc, 4, id);
    if (!bytes) return null;
    const insn = compressed
      ? low[0] | (low[1] << 8)
      : bytes[0] | (bytes[1] << 8) | (bytes[2] << 16) | (bytes[3] << 24);
    const a = decodeAccess(insn, (i) => hart.getReg(i));
    if (!a) return null;
    const pieces = this.#physical(Number(BigInt.asIntN(64, a.va)), a.size, id);
    if (!pieces) return null; // it will fault: no access
    return { pieces, read: a.read, write: a.write, next: pc + (compressed ? 2 : 4) };
  }

  /**
   * The stop-reply field (`watch:ADDR;`, `rwatch:`, `awatch:`) for the watchpoint `access`
   * hit, "" when none did. The access counts only if its instruction completed (the pc moved
   * on to the next one: no trap, no interrupt taken in its place).
   */
  #watchHit(access: PendingAccess | null, id: number): string {
    if (!access || this.#target.harts[id].pc !== access.next) return "";
    for (const w of this.#watches.values()) {
      if (w.type === 2 ? !access.write : w.type === 3 ? !access.read : false) continue;
      for (const [pa, n] of access.pieces) {
        if (pa < w.pa + w.len && w.pa < pa + n) {
          return `${["watch", "rwatch", "awatch"][w.type - 2]}:${hex(w.gdbAddr)};`;
        }
      }
    }
    return "";
  }

  /** Runs `fn` with the hart kept on its interpreter (one instruction per `run(1)`). */
  #exact(id: number, fn: () => StopReason): StopReason {
    const hart = this.#target.harts[id];
    if (hart.tlbFillAllowed === undefined) return fn();
    hart.tlbFillAllowed = false;
    try {
      return fn();
    } finally {
      if (hart.triggersChanged) hart.triggersChanged();
      else hart.tlbFillAllowed = true;
    }
  }

  #resume(mode: "continue" | "step" | "travel"): void {
    this.#setMode(mode);
    this.#doneHart = -1;
    this.#resumeOver = mode === "travel" ? -1 : this.#last;
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Changes the run mode; the target's clock is held while the hart is (as QEMU's is). */
  #setMode(mode: Mode): void {
    if (mode === this.#mode) return;
    if (mode === "stopped") this.#target.hold?.();
    else if (this.#mode === "stopped") this.#target.release?.();
    this.#mode = mode;
  }

  #reportStop(signal: number): void {
    this.#send?.(this.#stopReply(signal));
  }

  #stopReply(signal: number, why = ""): string {
    return `T${signal.toString(16).padStart(2, "0")}${why}thread:${thread(this.#last)};`;
  }

  #reply(payload: string): void {
    this.#send?.(payload);
  }

  /**
   * Handles one packet payload (framing and acks are the server's). Never throws on bad
   * input: malformed commands get an `E` reply, unknown ones the empty reply.
   */
  handlePacket(payload: string): void {
    let reply: string | null;
    try {
      reply = this.#command(payload);
    } catch {
      this.internalErrors++;
      reply = "E01";
    }
    if (reply !== null) this.#reply(reply);
  }

  /** The reply to `p`, or null when the reply comes later (resume commands). */
  #command(p: string): string | null {
    const hart = this.#target.harts[this.#g];
    switch (p[0]) {
      case "?":
        return this.#stopReply(SIGTRAP);
      case "g":
        return this.registers.filter((r) => r.regnum <= 32).map((r) => this.#readReg(r)).join("");
      case "G": {
        const hex = p.slice(1);
        if (hex.length < 33 * 16 || !/^[0-9a-fA-F]*$/.test(hex)) return "E01";
        for (let i = 0; i < 33; i++) {
          const v = parseLeHex(hex.slice(i * 16, i * 16 + 16))!;
          if (i === 32) hart.setPc(v);
          else hart.setReg(i, v);
        }
        return "OK";
      }
      case "p": {
        const reg = this.#reg(p.slice(1));
        return reg ? this.#readReg(reg) : "E45";
      }
      case "P": {
        const eq = p.indexOf("=");
        const reg = eq > 0 ? this.#reg(p.slice(1, eq)) : undefined;
        const v = eq > 0 ? parseLeHex(p.slice(eq + 1)) : null;
        if (!reg || v === null) return "E45";
        return this.#writeReg(reg, v) ? "OK" : "E01";
      }
      case "m": {
        const m = /^m([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(p);
        if (!m) return "E01";
        const addr = gdbAddress(m[1]), len = Math.min(parseInt(m[2], 16), MAX_READ);
        if (len === 0) return "";
        const bytes = this.#readMem(addr, len);
        return bytes ? toHex(bytes) : "E14";
      }
      case "M": {
        const m = /^M([0-9a-fA-F]+),([0-9a-fA-F]+):([0-9a-fA-F]*)$/.exec(p);
        const bytes = m ? fromHex(m[3]) : null;
        if (!m || !bytes || bytes.length !== parseInt(m[2], 16)) return "E01";
        return this.#writeMem(gdbAddress(m[1]), bytes);
      }
      case "X": {
        const colon = p.indexOf(":");
        const m = colon > 0 ? /^X([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(p.slice(0, colon)) : null;
        if (!m) return "E01";
        const data = unescapeBinary(p.slice(colon + 1));
        if (data.length !== parseInt(m[2], 16)) return "E01";
        const bytes = Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
        return bytes.length === 0 ? "OK" : this.#writeMem(gdbAddress(m[1]), bytes);
      }
      case "c":
      case "s": {
        if (p.length > 1) {
          const addr = parseHexAddr(p.slice(1));
          if (addr === null) return "E01";
          this.#target.harts[this.#c].setPc(addr);
        }
        this.#resume(p[0] === "s" ? "step" : "continue");
        return null;
      }
      case "C":
      case "S": // with a signal: there is none to deliver on bare metal
        this.#resume(p[0] === "S" ? "step" : "continue");
        return null;
      case "Z":
      case "z":
        return this.#breakpoint(p);
      case "b": {
        // bs / bc: reverse-stepi / reverse-continue (a replay only).
        const rc = this.#reverse;
        if (!rc || (p !== "bs" && p !== "bc")) return "";
        const id = this.#cAny ? this.#g : this.#c;
        if (p === "bs" && !rc.reverseStep(id)) {
          this.#last = id;
          return this.#stopReply(SIGTRAP, "replaylog:begin;");
        }
        if (p === "bc") rc.reverseContinue(this.#breakpoints);
        this.#resume("travel");
        return null;
      }
      case "D":
        this.#reply("OK");
        this.disconnect();
        return null;
      case "k":
        this.disconnect();
        this.#target.kill();
        return null;
      case "H": {
        // Hg/Hc N: thread N's hart; 0 (any) or -1 (all) keep the current one.
        const m = /^H([gc])(-1|[0-9a-fA-F]+)$/.exec(p);
        if (!m) return "E01";
        if (m[2] === "-1" || parseInt(m[2], 16) === 0) {
          if (m[1] === "c") this.#cAny = true;
          return "OK";
        }
        const id = this.#hartOf(m[2]);
        if (id < 0) return "E02";
        if (m[1] === "g") this.#g = id;
        else {
          this.#c = id;
          this.#cAny = false;
        }
        return "OK";
      }
      case "T":
        return this.#hartOf(p.slice(1)) >= 0 ? "OK" : "E01";
      case "v":
        return this.#vCommand(p);
      case "q":
      case "Q":
        return this.#query(p);
      default:
        return "";
    }
  }

  #vCommand(p: string): string | null {
    if (p === "vCont?") return "vCont;c;C;s;S";
    if (p.startsWith("vCont;")) {
      // All-stop: a step action steps its thread (the others stay still), else all continue.
      const actions = p.slice(6).split(";").map((a) => a.split(":"));
      if (actions.some(([a]) => !/^[cCsS]/.test(a ?? ""))) return "E01";
      const step = actions.find(([a]) => a[0] === "s" || a[0] === "S");
      if (step && step[1] !== undefined && step[1] !== "-1") {
        const id = this.#hartOf(step[1]);
        if (id < 0) return "E02";
        this.#c = id;
      }
      this.#resume(step ? "step" : "continue");
      return null;
    }
    if (p === "vMustReplyEmpty") return "";
    if (p.startsWith("vKill")) {
      this.#reply("OK");
      this.disconnect();
      this.#target.kill();
      return null;
    }
    return "";
  }

  #query(p: string): string {
    if (p.startsWith("qSupported")) {
      return `PacketSize=${PACKET_SIZE.toString(16)};qXfer:features:read+;vContSupported+;` +
        "QStartNoAckMode+" + (this.#reverse ? ";ReverseStep+;ReverseContinue+" : "");
    }
    if (p.startsWith("qXfer:features:read:")) {
      const m = /^qXfer:features:read:([^:]+):([0-9a-fA-F]+),([0-9a-fA-F]+)$/.exec(p);
      if (!m) return "E00";
      if (m[1] !== "target.xml") return "E00";
      const off = parseInt(m[2], 16), len = parseInt(m[3], 16);
      const chunk = this.xml.slice(off, off + len);
      return (off + len >= this.xml.length ? "l" : "m") + chunk;
    }
    if (p === "qAttached" || p.startsWith("qAttached:")) return "1";
    if (p === "qC") return `QC${thread(this.#g)}`;
    if (p === "qfThreadInfo") return "m" + this.#target.harts.map((_, id) => thread(id)).join(",");
    if (p === "qsThreadInfo") return "l";
    if (p.startsWith("qThreadExtraInfo,")) {
      const id = this.#hartOf(p.slice(17));
      return id < 0 ? "E02" : toHex(new TextEncoder().encode(`hart ${id}`));
    }
    if (p === "qOffsets") return "Text=0;Data=0;Bss=0";
    if (p.startsWith("qSymbol")) return "OK";
    if (p === "QStartNoAckMode") return "OK";
    return "";
  }

  #breakpoint(p: string): string {
    const m = /^([Zz])([0-4]),([0-9a-fA-F]+),([0-9a-fA-F]+)/.exec(p);
    if (!m) return "E01";
    const type = Number(m[2]);
    if (type >= 2) {
      const addr = gdbAddress(m[3]), len = parseInt(m[4], 16);
      const key = `${type},${addr},${len}`;
      if (m[1] === "z") {
        this.#watches.delete(key);
        return "OK";
      }
      // Watched where it is now in physical memory (the mapping is taken at insertion).
      const pieces = len >= 1 && len <= 64 ? this.#physical(addr, len) : null;
      if (!pieces || pieces.length !== 1) return "E22";
      this.#watches.set(key, { type: type as 2 | 3 | 4, pa: pieces[0][0], gdbAddr: addr, len });
      return "OK";
    }
    // Types 0 (software) and 1 (hardware) are both the pc check.
    const addr = gdbAddress(m[3]);
    if (m[1] === "Z") this.#breakpoints.add(addr);
    else this.#breakpoints.delete(addr);
    return "OK";
  }

  #writeMem(addr: number, bytes: Uint8Array): string {
    const pieces = this.#physical(addr, bytes.length);
    if (!pieces) return "E14";
    let off = 0;
    for (const [pa, n] of pieces) {
      this.#target.mem.writePhys(pa, bytes.subarray(off, off + n));
      off += n;
    }
    return "OK";
  }

  /** Hart id of gdb thread id `hex` (1-based), -1 when there is no such thread. */
  #hartOf(hex: string): number {
    if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return -1;
    const id = parseInt(hex, 16) - 1;
    return id >= 0 && id < this.#target.harts.length ? id : -1;
  }

  #readMem(addr: number, len: number, id = this.#g): Uint8Array | null {
    const pieces = this.#physical(addr, len, id);
    if (!pieces) return null;
    const out = new Uint8Array(len);
    let off = 0;
    for (const [pa, n] of pieces) {
      out.set(this.#target.mem.readPhys(pa, n), off);
      off += n;
    }
    return out;
  }

  /**
   * The RAM pieces [paddr, bytes] behind gdb's address range, translated as the hart sees
   * memory now (M-mode: physical; else through satp); null when any byte is unmapped or not
   * RAM (device registers are not read: reads there have side effects).
   */
  #physical(addr: number, len: number, id = this.#g): [number, number][] | null {
    const hart = this.#target.harts[id], mem = this.#target.mem;
    let satp = 0n;
    if ((hart.priv ?? 3) !== 3) {
      try {
        satp = hart.readCsr(Csr.SATP);
      } catch { /* no satp: physical */ }
    }
    const read64 = (pa: number) => {
      if (!mem.inRam(pa, 8)) return null;
      const b = mem.readPhys(pa, 8);
      return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    };
    const pieces: [number, number][] = [];
    let va = addr;
    const end = addr + len;
    while (va < end) {
      const n = Math.min(end, (Math.floor(va / 4096) + 1) * 4096) - va;
      const pa = satp === 0n ? va : debugTranslate(satp, BigInt(va), read64);
      if (pa === null || !mem.inRam(pa, n)) return null;
      pieces.push([pa, n]);
      va += n;
    }
    return pieces;
  }

  #reg(hex: string): RegisterDef | undefined {
    if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) return undefined;
    const n = parseInt(hex, 16);
    return this.registers.find((r) => r.regnum === n);
  }

  #readReg(r: RegisterDef): string {
    const hart = this.#target.harts[this.#g], s = r.source;
    let v: bigint;
    if (s.kind === "x") v = hart.getReg(s.index);
    else if (s.kind === "pc") v = hart.getPc();
    else if (s.kind === "f") v = hart.getFReg(s.index);
    else if (s.kind === "priv") v = BigInt(hart.priv ?? 3);
    else {
      try {
        v = hart.readCsr(s.csr);
      } catch {
        return "xx".repeat(r.bitsize / 8); // unavailable
      }
    }
    return leHex(v, r.bitsize / 8);
  }

  #writeReg(r: RegisterDef, v: bigint): boolean {
    const hart = this.#target.harts[this.#g], s = r.source;
    if (s.kind === "x") hart.setReg(s.index, v);
    else if (s.kind === "pc") hart.setPc(v);
    else if (s.kind === "f") {
      // The hart has no setter for f registers: they are raw bits in its state record.
      const mem = this.#target.mem;
      const w = (mem.hartBase(this.#g) + HartLayout.F) / 4 + 2 * s.index;
      mem.i32[w] = Number(BigInt.asIntN(32, v));
      mem.i32[w + 1] = Number(BigInt.asIntN(32, v >> 32n));
    } else if (s.kind === "csr") hart.writeCsr(s.csr, v);
    else return false;
    return true;
  }
}

/** gdb's thread id of hart `id`, in hex. */
const thread = (id: number) => (id + 1).toString(16).padStart(2, "0");

/** A big-endian hex address (as in `c ADDR`), null when malformed. */
function parseHexAddr(hex: string): bigint | null {
  return /^[0-9a-fA-F]{1,16}$/.test(hex) ? BigInt("0x" + hex) : null;
}

/** Hex of an address kept as a signed number (as the hart's pc is): back to 64-bit unsigned. */
const hex = (n: number) => BigInt.asUintN(64, BigInt(n)).toString(16);

/**
 * A 64-bit hex address as a signed number, exact for all of the low and high halves a hart
 * can address (e.g. kernel addresses 0xffffffff8xxxxxxx are small negative numbers).
 */
function gdbAddress(hexDigits: string): number {
  return Number(BigInt.asIntN(64, BigInt("0x" + hexDigits.slice(-16))));
}
