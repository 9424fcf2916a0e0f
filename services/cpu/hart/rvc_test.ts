/**
 * Every 16-bit parcel expands to the instruction the GNU disassembler decodes it as (or is
 * illegal where binutils says so), checked by disassembling both forms.
 */
import assert from "node:assert/strict";
import { expandCompressed } from "./rvc.ts";

/** Custom-0 opcode: disassembles as ".4byte", stands for "illegal" in the expansion listing. */
const ILLEGAL_MARK = 0x0000000b;

async function disassemble(bytes: Uint8Array, dir: string, name: string): Promise<string> {
  const path = `${dir}/${name}`;
  await Deno.writeFile(path, bytes);
  const out = await new Deno.Command("riscv64-unknown-elf-objdump", {
    args: ["-D", "-b", "binary", "-m", "riscv:rv64", path],
    stdout: "piped",
  }).output();
  assert.ok(out.success, "objdump failed");
  return new TextDecoder().decode(out.stdout);
}

function parse(listing: string, step: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of listing.split("\n")) {
    const m = /^\s*([0-9a-f]+):\s+[0-9a-f]+\s+(.*)$/.exec(line);
    if (m) out.set(parseInt(m[1], 16) / step, m[2].replace(/\s+/g, " ").replace(/ #.*/, "").trim());
  }
  return out;
}

/** Normalizes alias spellings and pc-relative targets so both listings compare equal. */
function normalize(text: string, addr: number): string {
  let t = text.replace(/^add (\w+),\1,0$/, "mv $1,$1").replace(
    /^add (\w+),zero,(\w+)$/,
    "mv $1,$2",
  );
  const m = /^(j|beqz|bnez) (?:(\w+),)?0x([0-9a-f]+)$/.exec(t);
  if (m) t = `${m[1]} ${m[2]} ${parseInt(m[3], 16) - addr}`;
  if (t.startsWith(".2byte") || t.startsWith(".4byte") || t === "unimp") return "ILLEGAL";
  return t;
}

Deno.test("RVC expansion agrees with binutils for every parcel", async () => {
  const parcels: number[] = [];
  for (let c = 0; c < 65536; c++) if ((c & 3) !== 3) parcels.push(c);
  const c16 = new Uint8Array(parcels.length * 2);
  const e32 = new Uint8Array(parcels.length * 4);
  const v16 = new DataView(c16.buffer), v32 = new DataView(e32.buffer);
  parcels.forEach((c, i) => {
    v16.setUint16(i * 2, c, true);
    v32.setInt32(i * 4, expandCompressed(c) || ILLEGAL_MARK, true);
  });
  const dir = await Deno.makeTempDir({ prefix: "vmesh-rvc-" });
  try {
    const a = parse(await disassemble(c16, dir, "c16.bin"), 2);
    const b = parse(await disassemble(e32, dir, "e32.bin"), 4);
    const mismatches: string[] = [];
    let compared = 0;
    for (const [i, text] of a) {
      // binutils prints HINT encodings (rd = x0 and the like) with a "c." prefix; skip them.
      if (text.startsWith("c.")) continue;
      const want = normalize(text, i * 2);
      const got = normalize(b.get(i) ?? "?", i * 4);
      // c.addi16sp with imm 0 is reserved (binutils shows "addi sp,sp,0"); we make it illegal.
      if (parcels[i] === 0x6101) {
        assert.equal(got, "ILLEGAL");
        continue;
      }
      compared++;
      if (want !== got) mismatches.push(`${parcels[i].toString(16)}: ${want} | ${got}`);
    }
    assert.deepEqual(mismatches.slice(0, 10), []);
    assert.ok(compared > 40000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
