/**
 * Interpreter throughput on small loops (`deno bench -A services/cpu/hart/hart_bench.ts`).
 * Each iteration runs 1,000,000 guest instructions, so MIPS = 1000 / (ms per iteration).
 */
import { assemble, EXIT, makeMachine } from "./test_support.ts";

const INSTRUCTIONS = 1_000_000;

const LOOPS: Record<string, string> = {
  "integer ALU + branch (compressed)": `
1: addi a0, a0, 1
  xor a2, a2, a0
  add a3, a3, a2
  slli a5, a3, 3
  j 1b`,
  "loads and stores": `
  la s0, buf
1: addi a0, a0, 1
  sd a0, 0(s0)
  ld a4, 0(s0)
  lw a5, 8(s0)
  sw a5, 12(s0)
  j 1b`,
  "calls and returns": `
1: call f
  addi a0, a0, 1
  j 1b
f: addi a1, a1, 1
  ret`,
};

for (const [name, body] of Object.entries(LOOPS)) {
  const bin = await assemble(`.globl _start
_start:
${body}
${EXIT}
.data
.align 3
buf: .dword 0, 0
`);
  const m = makeMachine(bin);
  m.hart.run(INSTRUCTIONS); // warm up (JIT tiers)
  Deno.bench(name, () => {
    m.hart.run(INSTRUCTIONS);
  });
}
