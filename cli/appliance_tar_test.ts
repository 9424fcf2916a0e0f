import assert from "node:assert/strict";
import { BLOCK, TarError, tarHeader, TarReader, TarWriter } from "./appliance_tar.ts";

async function write(path: string, members: [string, Uint8Array][]): Promise<void> {
  const f = await Deno.open(path, { write: true, create: true, truncate: true });
  const t = new TarWriter(f);
  for (const [name, data] of members) await t.add(name, data.length, [data]);
  await t.finish();
  f.close();
}

async function readAll(path: string): Promise<[string, Uint8Array][]> {
  const f = await Deno.open(path);
  try {
    const r = new TarReader(f);
    const out: [string, Uint8Array][] = [];
    for (let e = await r.next(); e; e = await r.next()) {
      out.push([e.name, await r.bytes(e.name, e.size)]);
    }
    return out;
  } finally {
    f.close();
  }
}

const members: [string, Uint8Array][] = [
  ["a.json", new TextEncoder().encode('{"x":1}\n')],
  ["disks/d.base.data", Uint8Array.from({ length: 70000 }, (_, i) => i % 251)],
  ["empty", new Uint8Array()],
];

Deno.test("tar: what the writer writes, GNU tar lists and extracts, and the reader reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await write(`${dir}/t.tar`, members);
    assert.deepEqual(await readAll(`${dir}/t.tar`), members);
    const out = await new Deno.Command("tar", { args: ["tf", `${dir}/t.tar`], stdout: "piped" })
      .output();
    assert.equal(new TextDecoder().decode(out.stdout), "a.json\ndisks/d.base.data\nempty\n");
    await new Deno.Command("tar", { args: ["xf", "t.tar"], cwd: dir }).output();
    assert.deepEqual(await Deno.readFile(`${dir}/disks/d.base.data`), members[1][1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: a truncated file or a corrupt header is a TarError saying where", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await write(`${dir}/t.tar`, members);
    const bytes = await Deno.readFile(`${dir}/t.tar`);
    for (const cut of [BLOCK + 100, BLOCK * 3 + 9000, bytes.length - 2 * BLOCK]) {
      await Deno.writeFile(`${dir}/cut.tar`, bytes.subarray(0, cut));
      await assert.rejects(readAll(`${dir}/cut.tar`), (e) => {
        assert.ok(e instanceof TarError);
        assert.match(e.message, /truncated at byte \d+/);
        return true;
      });
    }
    const bad = bytes.slice();
    bad[BLOCK * 2 + 10] ^= 1; // the second member's name
    await Deno.writeFile(`${dir}/bad.tar`, bad);
    await assert.rejects(readAll(`${dir}/bad.tar`), /header at byte 1024 is corrupt/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tar: sizes past 8 GiB take GNU's base-256 field", () => {
  const h = tarHeader("big", 9 * 1024 ** 3, 0);
  assert.equal(h[124], 0x80);
  let v = 0;
  for (let i = 125; i < 136; i++) v = v * 256 + h[i];
  assert.equal(v, 9 * 1024 ** 3);
});
