/** The newc cpio writer, checked by the real `cpio` tool and by the kernel's format rules. */

import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { encodeCpio, gzipArchive, initramfsEntries } from "../guest/initramfs.ts";

async function cpioList(archive: Uint8Array): Promise<string> {
  const child = new Deno.Command("cpio", {
    args: ["-t", "-v", "--quiet"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(archive);
  await w.close();
  const out = await child.output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

Deno.test("encodeCpio: cpio -t lists directories, files, symlinks and device nodes", async () => {
  const archive = encodeCpio([
    { type: "dir", path: "bin" },
    { type: "file", path: "bin/hello", data: new TextEncoder().encode("hi\n"), mode: 0o755 },
    { type: "symlink", path: "bin/sh", target: "hello" },
    { type: "chardev", path: "dev/console", major: 5, minor: 1 },
  ]);
  assert.equal(archive.length % 4, 0);
  const listing = await cpioList(archive);
  const lines = listing.trim().split("\n");
  assert.equal(lines.length, 4);
  assert.match(lines[0], /^drwxr-xr-x .* bin$/);
  assert.match(lines[1], /^-rwxr-xr-x .* 3 .* bin\/hello$/);
  assert.match(lines[2], /^lrwxrwxrwx .* bin\/sh -> hello$/);
  assert.match(lines[3], /^crw------- .* 5,\s*1 .* dev\/console$/);
});

Deno.test("encodeCpio: file contents survive extraction by cpio -i", async () => {
  const data = new Uint8Array(1001).map((_, i) => (i * 31) & 0xff);
  const archive = encodeCpio([{ type: "file", path: "blob", data }]);
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command("cpio", {
      args: ["-i", "--quiet"],
      cwd: dir,
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(archive);
    await w.close();
    assert.equal((await child.output()).code, 0);
    assert.deepEqual(await Deno.readFile(`${dir}/blob`), data);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("encodeCpio: rejects paths that climb out of the archive", () => {
  assert.throws(
    () => encodeCpio([{ type: "file", path: "../etc/x", data: new Uint8Array() }]),
    /bad member path/,
  );
});

Deno.test("initramfsEntries: busybox applet links point at /bin/busybox, /init present", async () => {
  const entries = initramfsEntries(
    new Uint8Array([1, 2, 3]),
    ["/bin/sh", "/sbin/poweroff", "/usr/bin/env", "/bin/sh", "/weird/place"],
    new TextEncoder().encode("#!/bin/sh\n"),
    new TextEncoder().encode("#!/bin/sh\nexit 0\n"),
  );
  const gz = gzipArchive(encodeCpio(entries));
  const listing = await cpioList(new Uint8Array(gunzipSync(gz)));
  assert.match(listing, /bin\/sh -> busybox\n/);
  assert.match(listing, /sbin\/poweroff -> \.\.\/bin\/busybox\n/);
  assert.match(listing, /usr\/bin\/env -> \.\.\/\.\.\/bin\/busybox\n/);
  assert.match(listing, /-rwxr-xr-x .* init\n/);
  assert.match(listing, /^c.* dev\/console$/m);
  assert.match(listing, /^-rwxr-xr-x .* usr\/share\/udhcpc\/default\.script$/m);
  assert.doesNotMatch(listing, /weird/);
  assert.equal(listing.match(/ bin\/sh ->/g)?.length, 1);
});
