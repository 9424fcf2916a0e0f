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
