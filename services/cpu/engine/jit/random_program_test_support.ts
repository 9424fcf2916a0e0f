/**
 * Test support: random RISC-V assembly for differential runs of the translator against the
 * interpreter (ALU and M ops on a few registers, loads and stores into a data buffer at
 * `data`, forward branches), repeated `repeat` times, ending at the test finisher.
 */
import { EXIT } from "../../hart/test_support.ts";

/** A random program: ALU ops on a few registers, loads/stores into DATA, forward branches. */
export function randomProgram(seed: number, length: number, data: number, repeat = 1): string {
  let s = seed >>> 0;
  const rnd = (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
  const regs = ["a0", "a1", "a2", "a3", "a4", "a5", "t0", "t1", "t2", "zero"];
  const r = () => regs[rnd(regs.length)];
  const w = () => regs[rnd(regs.length - 1)];
  const rr = [
    "add",
    "sub",
    "sll",
    "slt",
    "sltu",
    "xor",
    "srl",
    "sra",
    "or",
    "and",
    "addw",
    "subw",
    "sllw",
    "srlw",
    "sraw",
    "mul",
    "mulh",
    "mulhu",
    "mulhsu",
    "div",
    "divu",
    "rem",
    "remu",
    "mulw",
    "divw",
    "divuw",
    "remw",
    "remuw",
  ];
  const ri = ["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw"];
  const sh = ["slli", "srli", "srai"];
  const shw = ["slliw", "srliw", "sraiw"];
  const lines = [
    ".globl _start",
    "_start:",
    `li s0, ${data}`,
    ...["a0", "a1", "a2", "a3", "a4", "a5", "t0", "t1", "t2"].map((x) =>
      `li ${x}, ${(rnd(2) ? -1 : 1) * rnd(2 ** 31)}`
    ),
  ];
  // The body runs `repeat` times (s1 counts), so its code gets hot.
  lines.push(`li s1, ${repeat}`, "2:");
  for (let i = 0; i < length; i++) {
    const k = rnd(12);
    if (k < 5) lines.push(`${rr[rnd(rr.length)]} ${w()}, ${r()}, ${r()}`);
    else if (k < 7) lines.push(`${ri[rnd(ri.length)]} ${w()}, ${r()}, ${rnd(4096) - 2048}`);
    else if (k < 8) {
      lines.push(
        rnd(2)
          ? `${sh[rnd(3)]} ${w()}, ${r()}, ${rnd(64)}`
          : `${shw[rnd(3)]} ${w()}, ${r()}, ${rnd(32)}`,
      );
    } else if (k < 9) {
      const op = ["sb", "sh", "sw", "sd"][rnd(4)];
      lines.push(`${op} ${r()}, ${rnd(2000)}(s0)`);
    } else if (k < 10) {
      const op = ["lb", "lbu", "lh", "lhu", "lw", "lwu", "ld"][rnd(7)];
      lines.push(`${op} ${w()}, ${rnd(2000)}(s0)`);
    } else if (k < 11) {
      const op = ["beq", "bne", "blt", "bge", "bltu", "bgeu"][rnd(6)];
      lines.push(`${op} ${r()}, ${r()}, 1f`, `${ri[rnd(ri.length)]} ${w()}, ${r()}, 7`, "1:");
    } else lines.push(`lui ${w()}, ${rnd(1 << 20)}`);
  }
  lines.push("addi s1, s1, -1", "bnez s1, 2b", EXIT);
  return lines.join("\n");
}
