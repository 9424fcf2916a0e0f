/** `vmesh guest` as a process: help, bad arguments, and --print of the cached image paths. */

import assert from "node:assert/strict";

const CLI = new URL("../cli/guest.ts", import.meta.url).pathname;

async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("vmesh guest --help explains the options and the batch mode", async () => {
  const r = await run("--help");
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--force/);
  assert.match(r.stdout, /--print/);
  assert.match(r.stdout, /vmesh\.cmd=/);
});

Deno.test("vmesh guest rejects an unknown argument with exit status 2", async () => {
  const r = await run("--bogus");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown argument '--bogus'/);
});

Deno.test("vmesh guest --print prints absolute paths of existing images", async () => {
  const r = await run("--print");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.deepEqual(lines.map((l) => l.split("=")[0]), [
    "KERNEL",
    "INITRAMFS",
    "DISK",
    "FIRMWARE",
    "MANIFEST",
  ]);
  for (const line of lines) {
    const path = line.slice(line.indexOf("=") + 1);
    assert.ok(path.startsWith("/"), path);
    assert.ok((await Deno.stat(path)).isFile, path);
  }
});
