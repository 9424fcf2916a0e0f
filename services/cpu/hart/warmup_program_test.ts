/**
 * The interpreter warm-up program: its embedded words are what its source assembles to, and
 * it runs to its end (every trap it provokes is handled, S-mode under Sv39 is reached and left).
 */
import assert from "node:assert/strict";
import { type Hart, warmUpInterpreter } from "./hart.ts";
import { Cause, Csr } from "./csr_numbers.ts";
import { WARMUP_IMAGE, WARMUP_RAM, WARMUP_SOURCE } from "./warmup_program.ts";

/** Assembles WARMUP_SOURCE as the module doc says and returns the flat binary. */
async function build(): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-warmup-" });
  try {
    await Deno.writeTextFile(`${dir}/w.S`, WARMUP_SOURCE);
    const run = async (cmd: string, args: string[]) => {
      const r = await new Deno.Command(cmd, { args, stderr: "piped" }).output();
      if (!r.success) throw new Error(`${cmd}: ${new TextDecoder().decode(r.stderr)}`);
    };
    await run("riscv64-unknown-elf-gcc", [
      "-nostdlib",
      "-march=rv64gc",
      "-mabi=lp64d",
      "-Wl,-Ttext=0x80000000",
      "-Wl,--section-start=.cross=0x80003ffe",
      "-Wl,--no-relax",
      "-o",
      `${dir}/w.elf`,
      `${dir}/w.S`,
    ]);
    await run("riscv64-unknown-elf-objcopy", ["-O", "binary", `${dir}/w.elf`, `${dir}/w.bin`]);
    return await Deno.readFile(`${dir}/w.bin`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("warm-up image is what WARMUP_SOURCE assembles to", async () => {
  const bin = await build();
  assert.ok(bin.length <= WARMUP_RAM, `image of ${bin.length} bytes exceeds WARMUP_RAM`);
  const image = new Uint8Array(WARMUP_RAM);
  const view = new DataView(image.buffer);
  for (const [offset, words] of WARMUP_IMAGE) {
    words.forEach((w, i) => view.setUint32(offset + 4 * i, w, true));
  }
  assert.deepEqual(image.subarray(0, bin.length), bin);
  assert.ok(image.subarray(bin.length).every((b) => b === 0));
});

Deno.test("warm-up program runs to its end in M-mode after visiting S-mode", () => {
  const hart: Hart = warmUpInterpreter();
  assert.equal(hart.getReg(27), 0x600dn, "s11 marks the end of the program");
  assert.equal(hart.getReg(8), 3n, "the body ran three times in S-mode");
  assert.equal(hart.priv, 3);
  assert.equal(hart.readCsr(Csr.MCAUSE), BigInt(Cause.ECALL_S));
  assert.equal(hart.readCsr(Csr.SATP), 0n);
});
