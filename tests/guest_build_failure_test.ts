/**
 * A failing build step names itself and its log, and leaves no cache entry and no scratch
 * directory behind; within one `./vmesh test` run (one VMESH_TEST_RUN) it is not tried
 * again: the next caller fails at once with the first failure. Uses broken copies of the
 * recipe: a kernel.config option that does not exist (stops at the .config check, after
 * unpacking the kernel) and a data file larger than the data disk (mke2fs fails in ~1 s).
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { EarlierBuildFailure, ensureGuestImages, StepError } from "../guest/mod.ts";

async function copyDir(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyDir(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** A temporary copy of guest/recipe/ and an empty cache beside it. */
async function brokenRecipe(): Promise<{ tmp: string; recipeDir: string; cacheDir: string }> {
  const tmp = await Deno.makeTempDir({ prefix: "vmesh-guest-fail-" });
  const recipeDir = `${tmp}/recipe`;
  await copyDir(fileURLToPath(new URL("../guest/recipe", import.meta.url)), recipeDir);
  return { tmp, recipeDir, cacheDir: `${tmp}/cache` };
}

async function entries(dir: string): Promise<string[]> {
  const out = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("guest build: a failed step is named, points to its log, and caches nothing", async () => {
  const { tmp, recipeDir, cacheDir } = await brokenRecipe();
  try {
    await Deno.writeTextFile(`${recipeDir}/kernel.config`, "CONFIG_VMESH_NO_SUCH_OPTION=y\n", {
      append: true,
    });
    const lines: string[] = [];
    const err = await ensureGuestImages({
      cacheDir,
      recipeDir,
      testRun: "",
      report: (l) => lines.push(l),
    }).then(() => null, (e) => e);
    assert.ok(err instanceof StepError, String(err));
    assert.equal(err.step, "kernel: check .config");
    assert.match(err.message, /CONFIG_VMESH_NO_SUCH_OPTION=y \(got n\)/);
    assert.ok(err.logPath && err.message.includes(err.logPath));
    assert.match(await Deno.readTextFile(err.logPath), /make ARCH=riscv .*olddefconfig/);
    assert.ok(lines.some((l) => l.startsWith("kernel…")), lines.join("\n"));
    assert.ok(lines.some((l) => l.startsWith(`last lines of ${err.logPath}:`)), lines.join("\n"));
    // The data disk, built first, stays cached on its own; no image set, no scratch, no
    // failure marker outside a test run.
    const left = await entries(cacheDir);
    assert.equal(left.length, 3, left.join(" "));
    assert.deepEqual([left[0], left[2]], ["busybox-source.json", "logs"]);
    assert.match(left[1], /^data-[0-9a-f]{16}$/);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("guest build: within one test run a failed build is reported once, then fails fast", async () => {
  const { tmp, recipeDir, cacheDir } = await brokenRecipe();
  try {
    // 80 MiB of data (not sparse: mke2fs keeps holes) does not fit the 64 MiB data disk.
    await Deno.writeFile(`${recipeDir}/data/too-big.bin`, new Uint8Array(80 << 20).fill(0x5a));
    const attempt = async (testRun: string) => {
      const lines: string[] = [];
      const err = await ensureGuestImages({
        cacheDir,
        recipeDir,
        testRun,
        report: (l) => lines.push(l),
      })
        .then(() => null, (e) => e);
      assert.ok(err instanceof StepError, String(err));
      return { err, lines };
    };

    const first = await attempt("run-1");
    assert.ok(!(first.err instanceof EarlierBuildFailure));
    assert.equal(first.err.step, "data disk: mke2fs");
    const log = first.err.logPath!;
    assert.equal(first.lines.filter((l) => l.startsWith(`last lines of ${log}:`)).length, 1);
    const logAfterFirst = await Deno.readTextFile(log);

    // Same run: no build at all, the first failure's step and log in the error.
    const second = await attempt("run-1");
    assert.ok(second.err instanceof EarlierBuildFailure, String(second.err));
    assert.equal(second.err.step, "data disk: mke2fs");
    assert.equal(second.err.logPath, log);
    assert.match(second.err.message, /failed earlier in this \.\/vmesh test run/);
    assert.match(second.err.message, /see log: /);
    assert.deepEqual(second.lines, [], "nothing built, nothing reported");
    assert.equal(await Deno.readTextFile(log), logAfterFirst, "mke2fs did not run again");

    // A new run tries again (the recipe or the machine may have been fixed meanwhile).
    const third = await attempt("run-2");
    assert.ok(!(third.err instanceof EarlierBuildFailure), String(third.err));
    assert.equal(third.err.step, "data disk: mke2fs");
    assert.ok((await Deno.readTextFile(log)).length > logAfterFirst.length);
    assert.ok(!(await entries(cacheDir)).some((e) => /^data-|^[0-9a-f]{16}$/.test(e)));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
