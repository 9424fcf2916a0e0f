import assert from "node:assert/strict";
import { makeOwnedTempDir, OWNER_FILE, removeStaleDirs } from "./owned_temp_dir.ts";

/** The pid of a process that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command("true").spawn();
  await child.status;
  return child.pid;
}

Deno.test("removeStaleDirs: removes only prefixed dirs whose owner is gone", async () => {
  const parent = await Deno.makeTempDir({ prefix: "vmesh-owned-test-" });
  try {
    const mk = async (name: string, owner?: number) => {
      await Deno.mkdir(`${parent}/${name}`);
      if (owner !== undefined) {
        await Deno.writeTextFile(`${parent}/${name}/${OWNER_FILE}`, `${owner}`);
      }
    };
    await mk("x-dead", await deadPid());
    await mk("x-alive", Deno.pid);
    await mk("x-unowned");
    await mk("y-dead", await deadPid());
    assert.deepEqual(await removeStaleDirs(parent, "x-"), [`${parent}/x-dead`]);
    const left = [...Deno.readDirSync(parent)].map((e) => e.name).sort();
    assert.deepEqual(left, ["x-alive", "x-unowned", "y-dead"]);
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("makeOwnedTempDir: names this process as the owner and sweeps stale siblings", async () => {
  const stale = await Deno.makeTempDir({ prefix: "vmesh-owned-test-x-" });
  await Deno.writeTextFile(`${stale}/${OWNER_FILE}`, `${await deadPid()}`);
  const dir = await makeOwnedTempDir("vmesh-owned-test-x-");
  try {
    assert.equal((await Deno.readTextFile(`${dir}/${OWNER_FILE}`)).trim(), String(Deno.pid));
    await assert.rejects(Deno.stat(stale), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(stale, { recursive: true }).catch(() => {});
  }
});
