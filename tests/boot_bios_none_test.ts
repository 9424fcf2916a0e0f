/**
 * `./vmesh boot --bios none`: a kernel ELF starts in M-mode at its ELF entry, not at the
 * start of its image. The guest (built here with riscv64-unknown-elf-gcc) reads M-mode-only
 * CSRs, prints on the UART and powers off through the SiFive test device at 0x100000.
 */
import assert from "node:assert/strict";
import { buildBareMetalElf } from "./bare_metal_elf.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

// Code before _start prints WRONG-ENTRY; _start is a page further on. `csrr mhartid` traps
// outside M-mode (mtvec is 0, so there is no handler and nothing is printed).
const SOURCE = `
  .section .text
wrong:
  la t1, bad
  j print
  .balign 4096
  .globl _start
_start:
  csrr t3, mhartid
  csrr t4, misa
  srli t4, t4, 62
  li t5, 2
  la t1, notrv64
  bne t4, t5, print
  la t1, notzero
  bnez t3, print
  la t1, good
print:
  li t0, 0x10000000
1: lbu t2, 0(t1)
  beqz t2, 2f
  sb t2, 0(t0)
  addi t1, t1, 1
  j 1b
2: li t0, 0x100000
  li t1, 0x5555
  sw t1, 0(t0)
3: j 3b
  .section .rodata
good: .asciz "M-mode at the ELF entry, hart 0, RV64\\n"
bad: .asciz "WRONG-ENTRY\\n"
notrv64: .asciz "misa.MXL is not RV64\\n"
notzero: .asciz "mhartid is not 0\\n"
`;

Deno.test("vmesh boot --bios none: the kernel ELF runs in M-mode from its entry point", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-bios-none-" });
  try {
    const elfPath = await buildBareMetalElf(dir, "entry", SOURCE);
    // The entry is not the image's first byte, so starting at the load address would show.
    const elf = await Deno.readFile(elfPath);
    const entry = new DataView(elf.buffer).getBigUint64(24, true);
    assert.equal(entry, 0x80001000n);

    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1 << 20));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
        "boot",
        "--timeout",
        "300",
        "--bios",
        "none",
        "--kernel",
        elfPath,
        "--drive",
        `${dir}/a.img`,
        "--console",
        `log:${dir}/console.log`,
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(
      await Deno.readTextFile(`${dir}/console.log`),
      "M-mode at the ELF entry, hart 0, RV64\n",
      stderr,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
