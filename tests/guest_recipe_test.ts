/** Recipe plumbing: config fragments, apt source parsing, the batch protocol, the cache key. */

import assert from "node:assert/strict";
import { applyFragment } from "../guest/busybox_build.ts";
import { debSrcLineFor, parseDebSources } from "../guest/debian.ts";
import { batchCmdlineParam, parseBatchOutput } from "../guest/guest_protocol.ts";
import { fragmentSettings, unmetSettings } from "../guest/kernel_build.ts";
import { recipeKey } from "../guest/recipe_hash.ts";

Deno.test("fragmentSettings: reads set and unset lines, ignores comments", () => {
  const s = fragmentSettings('# a comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n');
  assert.deepEqual([...s], [["CONFIG_A", "y"], ["CONFIG_B", "n"], ["CONFIG_C", '"x y"']]);
});

Deno.test("unmetSettings: names settings the final .config did not take", () => {
  const frag = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n";
  const config = "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n";
  assert.deepEqual(unmetSettings(frag, config), ["CONFIG_B=n (got y)", "CONFIG_C=y (got n)"]);
  assert.deepEqual(unmetSettings(frag, "CONFIG_A=y\nCONFIG_C=y\n"), []);
});

Deno.test("applyFragment: replaces existing lines and appends missing ones", () => {
  const out = applyFragment(
    "CONFIG_STATIC=n\nCONFIG_TC=y\n# CONFIG_X is not set\nCONFIG_KEEP=y",
    'CONFIG_STATIC=y\n# CONFIG_TC is not set\nCONFIG_X="p"\nCONFIG_NEW=y\n',
  );
  assert.equal(
    out,
    'CONFIG_STATIC=y\n# CONFIG_TC is not set\nCONFIG_X="p"\nCONFIG_KEEP=y\nCONFIG_NEW=y',
  );
});

Deno.test("parseDebSources: deb822 and one-line entries give mirror and keyring", () => {
  const deb822 = parseDebSources(
    "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n" +
      "Components: main\nSigned-By: /k.gpg\n\nTypes: deb-src\nURIs: http://other\nSuites: sid\n",
    true,
  );
  assert.deepEqual(deb822, [{
    uri: "http://mirror.example/debian",
    suites: ["bookworm", "bookworm-updates"],
    components: ["main"],
    signedBy: "/k.gpg",
  }]);
  const oneLine = parseDebSources(
    "# deb http://commented bookworm main\ndeb [arch=amd64 signed-by=/x.gpg] http://m/debian bookworm main contrib\n" +
      "deb-src http://m/debian bookworm main\n",
    false,
  );
  assert.deepEqual(oneLine, [{
    uri: "http://m/debian",
    suites: ["bookworm"],
    components: ["main", "contrib"],
    signedBy: "/x.gpg",
  }]);
});

Deno.test("debSrcLineFor: takes the keyring another entry names for the same mirror", () => {
  // A fresh debootstrap root: sources.list without signed-by beside debian.sources with it;
  // apt refuses a deb-src entry whose Signed-By differs from the deb822 one.
  const sources = [
    ...parseDebSources("deb http://m.example/debian bookworm main\n", false),
    ...parseDebSources(
      "Types: deb\nURIs: http://m.example/debian/\nSuites: bookworm\nComponents: main\n" +
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
      true,
    ),
  ];
  assert.equal(
    debSrcLineFor(sources),
    "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] " +
      "http://m.example/debian bookworm main",
  );
  assert.equal(
    debSrcLineFor(parseDebSources("deb http://m.example/debian bookworm main\n", false)),
    "deb-src http://m.example/debian bookworm main",
  );
});

Deno.test("batchCmdlineParam: plain form when readable, base64 otherwise", () => {
  assert.equal(
    batchCmdlineParam("cat /proc/cpuinfo; echo ok"),
    'vmesh.cmd="cat /proc/cpuinfo; echo ok"',
  );
  const p = batchCmdlineParam('echo "quoted" ü');
  assert.match(p, /^vmesh\.cmd64=[A-Za-z0-9+/=]+$/);
  const bin = atob(p.slice("vmesh.cmd64=".length));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  assert.equal(new TextDecoder().decode(bytes), 'echo "quoted" ü');
});

Deno.test("parseBatchOutput: output between the markers and the status", () => {
  const text = "boot noise\r\nvmesh-guest: batch begin\r\nline 1\r\nline 2\r\n" +
    "vmesh-guest: batch end rc=3\r\n[ 1.0] reboot: Power down\r\n";
  assert.deepEqual(parseBatchOutput(text), { output: "line 1\nline 2\n", status: 3 });
  assert.equal(parseBatchOutput("vmesh-guest: batch begin\nno end yet\n"), null);
  assert.equal(parseBatchOutput("nothing"), null);
});

Deno.test("recipeKey: changes when a recipe file or a package version changes", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/data`);
    await Deno.writeTextFile(`${dir}/kernel.config`, "CONFIG_A=y\n");
    await Deno.writeTextFile(`${dir}/data/README`, "hello\n");
    const a = await recipeKey(dir, { "linux-source-6.1": "1" });
    assert.match(a.key, /^[0-9a-f]{16}$/);
    assert.deepEqual(Object.keys(a.inputs.files), ["data/README", "kernel.config"]);
    assert.equal((await recipeKey(dir, { "linux-source-6.1": "1" })).key, a.key);
    assert.notEqual((await recipeKey(dir, { "linux-source-6.1": "2" })).key, a.key);
    await Deno.writeTextFile(`${dir}/data/README`, "hello!\n");
    assert.notEqual((await recipeKey(dir, { "linux-source-6.1": "1" })).key, a.key);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
