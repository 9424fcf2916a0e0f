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

/** The first line of the {@link buildTickGuest} guest; a restored one never prints it again. */
export const TICK_GUEST_LINE = "vmesh tick guest up";

/**
 * M-mode program source: prints {@link TICK_GUEST_LINE}, then `tick XXXX` (a hex counter) every
 * `ms` milliseconds of mtime (10 MHz), sleeping in WFI on the CLINT timer meanwhile (`busy`:
 * polling mtime instead, a guest that keeps its core busy). A snapshot restored carries the
 * counter on; a cold boot starts again at 0000.
 */
export function tickGuest(ms: number, busy = false): string {
  return `
  .section .text
  .globl _start
_start:
  li s0, 0x10000000
  la a0, banner
  call puts
  li s1, 0
  li s2, 0x0200bff8
  li s3, 0x02004000
  li t0, 0x80
  csrs mie, t0
loop:
  ld t0, 0(s2)
  li t1, ${ms * 10_000}
  add t0, t0, t1
  sd t0, 0(s3)
1: ${busy ? "nop" : "wfi"}
  ld t1, 0(s2)
  bltu t1, t0, 1b
  la a0, tick
  call puts
  li t3, 12
2: srl t4, s1, t3
  andi t4, t4, 15
  la t5, hex
  add t5, t5, t4
  lbu t4, 0(t5)
  sb t4, 0(s0)
  addi t3, t3, -4
  bgez t3, 2b
  li t4, 10
  sb t4, 0(s0)
  addi s1, s1, 1
  j loop
puts:
  lbu t1, 0(a0)
  beqz t1, 3f
  sb t1, 0(s0)
  addi a0, a0, 1
  j puts
3: ret
  .section .rodata
banner: .asciz "${TICK_GUEST_LINE}\\n"
tick: .asciz "tick "
hex: .ascii "0123456789abcdef"
`;
}

/** Builds the tick guest into `dir/tick.elf` (a tick every `ms` ms, idle in WFI between). */
export function buildTickGuest(dir: string, ms = 200, busy = false): Promise<string> {
  return buildBareMetalElf(dir, busy ? "busytick" : "tick", tickGuest(ms, busy));
}

/** The tick numbers in console text, in order. */
export function ticks(text: string): number[] {
  return [...text.matchAll(/tick ([0-9a-f]{4})/g)].map((m) => parseInt(m[1], 16));
}
