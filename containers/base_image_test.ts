import assert from "node:assert/strict";
import { BaseImageError, hostDebianMirror } from "./base_image.ts";

async function etcWith(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/sources.list.d`);
  for (const [name, text] of Object.entries(files)) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  return dir;
}

Deno.test("hostDebianMirror: the URIs of the deb822 stanza that names bookworm", async () => {
  const dir = await etcWith({
    "sources.list.d/debian.sources": "Types: deb\nURIs: http://security.example/debian-security\n" +
      "Suites: bookworm-security\nComponents: main\n\n" +
      "Types: deb\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n",
  });
  try {
    assert.equal(await hostDebianMirror(dir), "http://mirror.example/debian");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostDebianMirror: a one-line sources.list, options and all; none is a clear error", async () => {
  const dir = await etcWith({
    "sources.list": "# comment\ndeb [arch=amd64] http://old.example/debian bookworm main\n",
  });
  try {
    assert.equal(await hostDebianMirror(dir), "http://old.example/debian");
    await Deno.writeTextFile(`${dir}/sources.list`, "deb http://old.example/debian trixie main\n");
    await assert.rejects(hostDebianMirror(dir), (e: Error) => {
      assert.ok(e instanceof BaseImageError);
      assert.match(e.message, /no Debian bookworm mirror .* pass one/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
