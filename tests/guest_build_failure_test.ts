/**
 * A failing build step names itself and its log, and leaves no cache entry and no scratch
 * directory behind. Uses a copy of the recipe whose kernel.config asks for an option that
 * does not exist, so the build stops at the .config check (after unpacking the kernel).
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ensureGuestImages, StepError } from "../guest/mod.ts";

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

Deno.test("guest build: a failed step is named, points to its log, and caches nothing", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "vmesh-guest-fail-" });
  try {
    const recipeDir = `${tmp}/recipe`;
    await copyDir(fileURLToPath(new URL("../guest/recipe", import.meta.url)), recipeDir);
    await Deno.writeTextFile(`${recipeDir}/kernel.config`, "CONFIG_VMESH_NO_SUCH_OPTION=y\n", {
      append: true,
    });
    const cacheDir = `${tmp}/cache`;
    const lines: string[] = [];
    const err = await ensureGuestImages({ cacheDir, recipeDir, report: (l) => lines.push(l) })
      .then(() => null, (e) => e);
    assert.ok(err instanceof StepError, String(err));
    assert.equal(err.step, "kernel: check .config");
    assert.match(err.message, /CONFIG_VMESH_NO_SUCH_OPTION=y \(got n\)/);
    assert.ok(err.logPath && err.message.includes(err.logPath));
    assert.match(await Deno.readTextFile(err.logPath), /make ARCH=riscv .*olddefconfig/);
    assert.ok(lines.some((l) => l.startsWith("kernel…")), lines.join("\n"));
    const left = [];
    for await (const e of Deno.readDir(cacheDir)) left.push(e.name);
    assert.deepEqual(left.sort(), ["busybox-source.json", "logs"]);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
