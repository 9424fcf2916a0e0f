/**
 * Assembles the small bare-metal guests the `vmesh boot` tests run: one assembly source,
 * no runtime, linked at the RAM base 0x80000000 where `--bios none` starts it in M-mode.
 * @module
 */

import assert from "node:assert/strict";

/** Writes `source` to `dir/name.S`, assembles and links it; returns the `dir/name.elf` path. */
export async function buildBareMetalElf(
  dir: string,
  name: string,
  source: string,
): Promise<string> {
  await Deno.writeTextFile(`${dir}/${name}.S`, source);
  const out = await new Deno.Command("riscv64-unknown-elf-gcc", {
    args: [
      "-nostdlib",
      "-march=rv64gc",
      "-mabi=lp64d",
      "-Wl,-N",
      "-Wl,-Ttext=0x80000000",
      "-Wl,--no-warn-rwx-segments",
      "-o",
      `${dir}/${name}.elf`,
      `${dir}/${name}.S`,
    ],
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return `${dir}/${name}.elf`;
}

/** What a {@link uartGuest} does after its line: idle in WFI, spin, or power off (test finisher). */
export type AfterLine = "wfi" | "spin" | "poweroff";

const AFTER_LINE: Record<AfterLine, string> = {
  wfi: "2: wfi\n  j 2b",
  spin: "2: j 2b",
  poweroff: "2: li t0, 0x100000\n  li t1, 0x5555\n  sw t1, 0(t0)\n3: j 3b",
};

/**
 * M-mode program source: prints `line` and a newline on the UART, then does `after`.
 * @example
 * ```ts
 * const dir = await Deno.makeTempDir();
 * const elf = await buildBareMetalElf(dir, "hello", uartGuest("hello", "poweroff"));
 * ```
 */
export function uartGuest(line: string, after: AfterLine): string {
  return `
  .section .text
  .globl _start
_start:
  li t0, 0x10000000
  la t1, msg
1: lbu t2, 0(t1)
  beqz t2, 2f
  sb t2, 0(t0)
  addi t1, t1, 1
  j 1b
${AFTER_LINE[after]}
  .section .rodata
msg: .asciz "${line}\\n"
`;
}

/** The guest the control plane tests run: prints {@link IDLE_GUEST_LINE}, then idles in WFI. */
export const IDLE_GUEST_LINE = "vmesh idle guest up";

/** Builds the idle guest into `dir/idle.elf` (an idle hart costs its host no CPU). */
export function buildIdleGuest(dir: string): Promise<string> {
  return buildBareMetalElf(dir, "idle", uartGuest(IDLE_GUEST_LINE, "wfi"));
}
