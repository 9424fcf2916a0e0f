/**
 * Test support: assembles small bare-metal M-mode programs for machine tests (Debian's
 * riscv64-unknown-elf-gcc), with a prelude of device addresses and `putc`/`exit` macros.
 * @module
 */
import assert from "node:assert/strict";

/** Where {@link assemble} links the program. */
export interface AssembleOptions {
  /** Address of .text (default 0x80000000). */
  textBase?: string;
  /** Pack segments without page alignment (`-n`, default true). */
  packed?: boolean;
}

/** Assembles a bare-metal M-mode program (linked at 0x80000000 unless told otherwise). */
export async function assemble(asm: string, o: AssembleOptions = {}): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh_machine_" });
  try {
    await Deno.writeTextFile(`${dir}/p.S`, asm);
    const r = await new Deno.Command("riscv64-unknown-elf-gcc", {
      args: [
        "-nostdlib",
        "-march=rv64gc",
        "-mabi=lp64d",
        `-Wl,-Ttext=${o.textBase ?? "0x80000000"}`,
        ...(o.packed ?? true ? ["-Wl,-n"] : []),
        "-Wl,--no-warn-rwx-segments",
        `${dir}/p.S`,
        "-o",
        `${dir}/p.elf`,
      ],
      stderr: "piped",
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    return await Deno.readFile(`${dir}/p.elf`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Common macros: UART at 0x10000000, test finisher at 0x100000. */
export const PRELUDE = `
  .equ UART, 0x10000000
  .equ TEST, 0x100000
  .equ CLINT, 0x2000000
  .equ PLIC, 0xc000000
  .macro putc reg
    li t6, UART
    sb \\reg, 0(t6)
  .endm
  .macro exit code
    li t6, TEST
    li t5, (\\code << 16) | 0x3333
    .if \\code == 0
    li t5, 0x5555
    .endif
    sw t5, 0(t6)
  9: j 9b
  .endm
  .option norelax          # no gp-relative addressing: gp is not set up
  .text
  .globl _start
_start:
`;
