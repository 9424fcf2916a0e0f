import assert from "node:assert/strict";
import { debianSources, hostDebianMirror } from "./base_image.ts";

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
    assert.equal(await hostDebianMirror("bookworm", dir), "http://mirror.example/debian");
    assert.equal(
      await hostDebianMirror("bookworm-security", dir),
      "http://security.example/debian-security",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("hostDebianMirror: a one-line sources.list, options and all; none is undefined", async () => {
  const dir = await etcWith({
    "sources.list": "# comment\ndeb [arch=amd64] http://old.example/debian bookworm main\n",
  });
  try {
    assert.equal(await hostDebianMirror("bookworm", dir), "http://old.example/debian");
    assert.equal(await hostDebianMirror("bookworm-security", dir), undefined);
    await Deno.writeTextFile(`${dir}/sources.list`, "deb http://old.example/debian trixie main\n");
    assert.equal(await hostDebianMirror("bookworm", dir), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("debianSources: bookworm and updates from the mirror, security only when given", () => {
  const both = debianSources("http://m/debian", "http://m/debian-security");
  assert.match(both, /^URIs: http:\/\/m\/debian\nSuites: bookworm bookworm-updates$/m);
  assert.match(both, /^URIs: http:\/\/m\/debian-security\nSuites: bookworm-security$/m);
  assert.equal(both.split("\n\n").length, 2);
  const one = debianSources("http://m/debian");
  assert.doesNotMatch(one, /security/);
  assert.match(one, /^Signed-By: \/usr\/share\/keyrings\/debian-archive-keyring.gpg$/m);
});
