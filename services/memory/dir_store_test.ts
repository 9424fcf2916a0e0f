import assert from "node:assert/strict";
import { DirStore } from "./dir_store.ts";
import { isPageHash, pageHash } from "./page_hash.ts";
import { isManifestName } from "./page_store.ts";

Deno.test("page hash: SHA-256 hex", async () => {
  const h = await pageHash(new TextEncoder().encode("abc"));
  assert.equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(isPageHash(h), true);
  assert.equal(isPageHash(h.toUpperCase()), false);
  assert.equal(isManifestName("snap-1"), true);
  assert.equal(isManifestName("../x"), false);
  assert.equal(isManifestName(".."), false);
});

Deno.test("dir store: put/get by hash, dedup, manifests, survives reopen", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await DirStore.open(dir);
    const page = new Uint8Array(4096).fill(7);
    const h = await pageHash(page);
    assert.equal(await store.hasPage(h), false);
    assert.equal(await store.putPage(h, page), false);
    assert.equal(await store.putPage(h, page), true);
    assert.deepEqual(await store.getPage(h), page);
    assert.equal(await store.getPage("0".repeat(64)), undefined);
    let files = 0;
    for await (const _ of Deno.readDir(`${dir}/pages/${h.slice(0, 2)}`)) files++;
    assert.equal(files, 1);
    await store.putManifest("snap1", new Uint8Array([1, 2, 3]));
    const again = await DirStore.open(dir);
    assert.deepEqual(await again.getManifest("snap1"), new Uint8Array([1, 2, 3]));
    assert.equal(await again.getManifest("nope"), undefined);
    assert.equal(await again.hasPage(h), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dir store: manifests are listed sorted and deleted by name, pages stay", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await DirStore.open(dir);
    const page = new Uint8Array(4096).fill(9);
    const h = await pageHash(page);
    await store.putPage(h, page);
    await store.putManifest("b-snap", new Uint8Array([2]));
    await store.putManifest("a-snap", new Uint8Array([1]));
    // A write in progress (temp name) is not a manifest yet.
    await Deno.writeFile(`${dir}/manifests/c-snap.1234.tmp`, new Uint8Array([3]));
    assert.deepEqual(await store.listManifests(), ["a-snap", "b-snap"]);
    assert.equal(await store.deleteManifest("a-snap"), true);
    assert.equal(await store.deleteManifest("a-snap"), false);
    assert.deepEqual(await store.listManifests(), ["b-snap"]);
    assert.equal(await store.hasPage(h), true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dir store: a page asked for is young again; listPages and deletePage", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = await DirStore.open(dir);
    const page = new Uint8Array(4096).fill(8);
    const h = await pageHash(page);
    await store.putPage(h, page);
    const old = new Date(Date.now() - 3_600_000);
    await Deno.utime(`${dir}/pages/${h.slice(0, 2)}/${h}`, old, old);
    const [before] = await store.listPages();
    assert.ok(before.mtimeMs < Date.now() - 3_000_000, "an hour old");
    assert.equal(await store.hasPage(h), true);
    const [after] = await store.listPages();
    assert.deepEqual([after.hash, after.size], [h, 4096]);
    assert.ok(after.mtimeMs > Date.now() - 60_000, "asked for: young again");
    assert.equal(await store.deletePage(h), true);
    assert.equal(await store.deletePage(h), false);
    assert.deepEqual(await store.listPages(), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
