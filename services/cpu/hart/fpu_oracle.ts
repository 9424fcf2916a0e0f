/**
 * QEMU as the oracle for the F/D extensions: builds a bare-metal RV64GC program that executes a
 * table of FP cases (each instruction patched into a stub, run after loading its operands) and
 * writes x10, f10 and fflags per case to a semihosting console on QEMU's `spike` board (one
 * SYS_WRITE0 for the whole table; per-character HTIF output is far slower).
 *
 * Run as a script for a deeper sweep: `deno run -A services/cpu/hart/fpu_oracle.ts SEED SCALE`.
 */

import { type FpCase, fpCases } from "./fpu_cases.ts";
import { fpExecute, type FpState } from "./fpu.ts";

/** Result of one case as QEMU computed it. */
export interface OracleResult {
  /** x10 after the instruction, [lo, hi]. */
  x: [number, number];
  /** f10 after the instruction, [lo, hi]. */
  f: [number, number];
  /** fflags after the instruction. */
  flags: number;
}

const START_S = `
  .section .text.start
  .globl _start
_start:
  la sp, stack_top
  la t0, trap            # any trap ends the run with exit code 3 instead of looping
  csrw mtvec, t0
  li t0, 0x2000          # mstatus.FS = Initial
  csrs mstatus, t0
  call main
  la t0, tohost
  li t1, 1
  sd t1, 0(t0)
1: j 1b

  .align 2
# an illegal instruction in a stub returns 0xbad in x10 and skips it; any other trap ends the
# run with exit code 3 instead of looping
trap:
  csrr t0, mcause
  li t1, 2
  bne t0, t1, 3f
  csrr t0, mepc
  addi t0, t0, 4
  csrw mepc, t0
  li a0, 0xbad
  mret
3:
  la t0, tohost
  li t1, 7
  sd t1, 0(t0)
2: j 2b

  .text
  .globl run_case
# a0 = case record {u32 stub index, u32 frm, u64 op[3]}, a1 = output {u64 x10, u64 f10, u64 flags}
run_case:
  addi sp, sp, -16
  sd ra, 0(sp)
  sd s0, 8(sp)
  mv s0, a1
  lwu t0, 0(a0)
  slli t0, t0, 3
  la t1, stubs
  add t2, t1, t0
  lwu t0, 4(a0)
  csrw frm, t0
  fld f11, 8(a0)
  fld f12, 16(a0)
  fld f13, 24(a0)
  ld a1, 8(a0)
  ld a2, 16(a0)
  ld a3, 24(a0)
  li a0, 0x5a5a5a5a
  fmv.d.x f10, a0
  csrw fflags, zero
  jalr ra, t2
  csrr t0, fflags
  sd a0, 0(s0)
  fsd f10, 8(s0)
  sd t0, 16(s0)
  ld ra, 0(sp)
  ld s0, 8(sp)
  addi sp, sp, 16
  ret

  .align 3
stubs:
  .include "stubs.S"

  .globl semihost_write0
# a0 = NUL-terminated string: one semihosting SYS_WRITE0 call for the whole output
semihost_write0:
  mv a1, a0
  li a0, 4
  .option push
  .option norvc
  .align 4
  slli zero, zero, 0x1f
  ebreak
  srai zero, zero, 0x7
  .option pop
  ret

  .section .rodata
  .align 3
  .globl cases, cases_end
cases:
  .incbin "cases.bin"
cases_end:

  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost, fromhost
  .type tohost, @object
  .size tohost, 8
tohost: .dword 0
  .align 6
  .type fromhost, @object
  .size fromhost, 8
fromhost: .dword 0
`;

const mainC = (n: number) => `
typedef unsigned long u64;
extern volatile u64 tohost, fromhost;
extern const char cases[], cases_end[];
void run_case(const char *rec, u64 *out);

void semihost_write0(const char *s);

static char buf[40 * ${n} + 16];

static int hex(char *p, u64 v, int digits) {
  for (int i = digits - 1; i >= 0; i--) {
    p[i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  }
  return digits;
}

int main(void) {
  u64 r[3];
  char *p = buf;
  for (const char *c = cases; c < cases_end; c += 32) {
    run_case(c, r);
    p += hex(p, r[0], 16);
    *p++ = ' ';
    p += hex(p, r[1], 16);
    *p++ = ' ';
    p += hex(p, r[2], 2);
    *p++ = '\\n';
  }
  p[0] = 'E';
  p[1] = 'N';
  p[2] = 'D';
  p[3] = '\\n';
  p[4] = 0;
  semihost_write0(buf);
  return 0;
}
`;

const LINK_LD = `
OUTPUT_ARCH(riscv)
ENTRY(_start)
SECTIONS {
  . = 0x80000000;
  .text : { *(.text.start) *(.text*) }
  .rodata : { *(.rodata*) *(.srodata*) }
  .data : { *(.data*) *(.sdata*) }
  .tohost : { *(.tohost) }
  .bss : { *(.bss*) *(.sbss*) *(COMMON) }
  . = ALIGN(16);
  . += 0x10000;
  stack_top = .;
}
`;

/** Serialises cases as the program's 32-byte records plus the stub per distinct instruction. */
export function encodeCases(cases: FpCase[]): { records: Uint8Array; stubs: string } {
  const bytes = new Uint8Array(cases.length * 32);
  const v = new DataView(bytes.buffer);
  const index = new Map<number, number>();
  let stubs = "";
  cases.forEach((c, i) => {
    const o = i * 32;
    let k = index.get(c.insn);
    if (k === undefined) {
      k = index.size;
      index.set(c.insn, k);
      stubs += `  .word 0x${(c.insn >>> 0).toString(16)}, 0x00008067\n`;
    }
    v.setInt32(o, k, true);
    v.setInt32(o + 4, c.frm, true);
    for (let k = 0; k < 3; k++) {
      v.setInt32(o + 8 + 8 * k, c.ops[k][0], true);
      v.setInt32(o + 12 + 8 * k, c.ops[k][1], true);
    }
  });
  return { records: bytes, stubs };
}

async function run(cmd: string, args: string[], cwd: string): Promise<string> {
  const r = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(r.stdout);
  if (!r.success) {
    const err = new TextDecoder().decode(r.stderr).slice(0, 2000);
    throw new Error(`${cmd} exited with status ${r.code} (3 = guest trap): ${err}`);
  }
  return text;
}

function word(hex: string, from: number): number {
  return parseInt(hex.slice(from, from + 8), 16) | 0;
}

/** Runs the cases under qemu-system-riscv64 (spike board) and returns its results. */
export async function runOnQemu(cases: FpCase[]): Promise<OracleResult[]> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-fpu-oracle-" });
  try {
    await Deno.writeTextFile(`${dir}/start.S`, START_S);
    await Deno.writeTextFile(`${dir}/main.c`, mainC(cases.length));
    await Deno.writeTextFile(`${dir}/link.ld`, LINK_LD);
    const { records, stubs } = encodeCases(cases);
    await Deno.writeFile(`${dir}/cases.bin`, records);
    await Deno.writeTextFile(`${dir}/stubs.S`, stubs);
    await run("riscv64-unknown-elf-gcc", [
      "-march=rv64gc",
      "-mabi=lp64d",
      "-mcmodel=medany",
      "-O2",
      "-ffreestanding",
      "-nostdlib",
      "-nostartfiles",
      "-T",
      "link.ld",
      "-o",
      "prog.elf",
      "start.S",
      "main.c",
    ], dir);
    await run("qemu-system-riscv64", [
      "-M",
      "spike",
      "-bios",
      "none",
      "-kernel",
      "prog.elf",
      "-nographic",
      "-monitor",
      "none",
      "-chardev",
      "file,id=sh0,path=out.txt",
      "-semihosting-config",
      "enable=on,target=native,chardev=sh0",
    ], dir);
    const text = await Deno.readTextFile(`${dir}/out.txt`);
    const lines = text.split(/\r?\n/).filter((l) =>
      /^[0-9a-f]{16} [0-9a-f]{16} [0-9a-f]{2}$/.test(l)
    );
    if (!text.includes("END") || lines.length !== cases.length) {
      throw new Error(`QEMU printed ${lines.length} results for ${cases.length} cases`);
    }
    return lines.map((l) => ({
      x: [word(l, 8), word(l, 0)],
      f: [word(l, 25), word(l, 17)],
      flags: parseInt(l.slice(34, 36), 16),
    }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Result of one case run through `fpExecute` from the oracle program's initial state. */
export interface LocalResult extends OracleResult {
  /** False when fpExecute reported an illegal instruction. */
  ok: boolean;
}

const X = 0;
const F = 64;
/** x10 after an illegal instruction, set by the program's trap handler. */
const ILLEGAL_MARK = 0xbad;

/** Runs one case through fpExecute with the oracle program's register conventions. */
export function runOnFpu(c: FpCase): LocalResult {
  const s: FpState = { i32: new Int32Array(128), xBase: X, fBase: F, fflags: 0, frm: c.frm };
  for (let k = 0; k < 3; k++) {
    s.i32[X + 2 * (11 + k)] = s.i32[F + 2 * (11 + k)] = c.ops[k][0];
    s.i32[X + 2 * (11 + k) + 1] = s.i32[F + 2 * (11 + k) + 1] = c.ops[k][1];
  }
  s.i32[X + 20] = 0x5a5a5a5a; // the program's marker in x10 and f10
  s.i32[F + 20] = 0x5a5a5a5a;
  const ok = fpExecute(s, c.insn);
  if (!ok) s.i32[X + 20] = ILLEGAL_MARK; // what the oracle's trap handler does
  return {
    ok,
    x: [s.i32[X + 20], s.i32[X + 21]],
    f: [s.i32[F + 20], s.i32[F + 21]],
    flags: s.fflags,
  };
}

function hex(p: [number, number]): string {
  return (p[1] >>> 0).toString(16).padStart(8, "0") + (p[0] >>> 0).toString(16).padStart(8, "0");
}

/** Descriptions of the cases where fpExecute and QEMU disagree. */
export function compare(cases: FpCase[], oracle: OracleResult[]): string[] {
  const bad: string[] = [];
  for (let i = 0; i < cases.length; i++) {
    const c = cases[i];
    const want = oracle[i];
    const got = runOnFpu(c);
    if (
      got.ok !== c.legal || got.x[0] !== want.x[0] || got.x[1] !== want.x[1] ||
      got.f[0] !== want.f[0] ||
      got.f[1] !== want.f[1] || got.flags !== want.flags
    ) {
      bad.push(
        `insn ${(c.insn >>> 0).toString(16)} frm ${c.frm} ops ${c.ops.map(hex).join(" ")}: ` +
          `want x ${hex(want.x)} f ${hex(want.f)} fl ${want.flags}, ` +
          `got ${got.ok ? "" : "illegal "}x ${hex(got.x)} f ${hex(got.f)} fl ${got.flags}`,
      );
    }
  }
  return bad;
}

if (import.meta.main) {
  const seed = Number(Deno.args[0] ?? 2);
  const scale = Number(Deno.args[1] ?? 8);
  const cases = fpCases(seed, scale);
  const bad = compare(cases, await runOnQemu(cases));
  console.log(`seed ${seed} scale ${scale}: ${cases.length} cases, ${bad.length} differ`);
  for (const b of bad.slice(0, 20)) console.log(b);
  if (bad.length) Deno.exit(1);
}
