/** The ext4 data disk recipe, read back with e2fsprogs' debugfs (no mounting needed). */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import {
  buildDataDisk,
  PATTERN_BYTES,
  patternBytes,
  patternSectorHeader,
} from "../guest/data_disk.ts";

async function debugfs(image: string, request: string): Promise<Uint8Array> {
  const out = await new Deno.Command("debugfs", {
    args: ["-R", request, image],
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(out.code, 0);
  return out.stdout;
}

Deno.test("patternBytes: every sector starts with its number and ends with a newline", () => {
  const p = patternBytes(512 * 3 + 100);
  const text = new TextDecoder().decode(p);
  assert.equal(text.slice(0, 29), "vmesh pattern sector 00000000");
  assert.equal(text.slice(1024, 1024 + 29), patternSectorHeader(2));
  assert.equal(p[511], 0x0a);
  assert.equal(p[600], 0x2e);
  assert.equal(text.slice(1536, 1536 + 29), patternSectorHeader(3));
});

Deno.test("buildDataDisk: ext4 image holds README and pattern.bin with the recorded hash", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const recipeData = fileURLToPath(new URL("../guest/recipe/data", import.meta.url));
    const image = `${dir}/data.ext4`;
    const info = await buildDataDisk({
      recipeDataDir: recipeData,
      stageDir: `${dir}/stage`,
      imagePath: image,
      logPath: `${dir}/data.log`,
      report: () => {},
    });
    assert.equal((await Deno.stat(image)).size, 64 * 1024 * 1024);
    assert.equal(info.pattern.bytes, PATTERN_BYTES);
    const readme = new TextDecoder().decode(await debugfs(image, "cat /README"));
    assert.equal(readme, await Deno.readTextFile(`${recipeData}/README`));
    const pattern = await debugfs(image, "cat /pattern.bin");
    assert.equal(pattern.length, PATTERN_BYTES);
    assert.equal(createHash("sha256").update(pattern).digest("hex"), info.pattern.sha256);
    const fsInfo = new TextDecoder().decode(await debugfs(image, "stats"));
    assert.match(fsInfo, /Filesystem volume name:\s+vmesh-data/);
    assert.match(fsInfo, /has_journal/);
    const fsck = await new Deno.Command("e2fsck", {
      args: ["-f", "-n", image],
      stdout: "null",
      stderr: "null",
    })
      .output();
    assert.equal(fsck.code, 0, "e2fsck found problems");
    // A second build from the same recipe gives the same bytes.
    await Deno.remove(`${dir}/stage`, { recursive: true });
    const again = await buildDataDisk({
      recipeDataDir: recipeData,
      stageDir: `${dir}/stage2`,
      imagePath: `${dir}/again.ext4`,
      logPath: `${dir}/data.log`,
      report: () => {},
    });
    assert.deepEqual(again, info);
    assert.deepEqual(await Deno.readFile(`${dir}/again.ext4`), await Deno.readFile(image));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
