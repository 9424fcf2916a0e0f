import assert from "node:assert/strict";
import { spawnWithDeadline } from "./spawn_with_deadline.ts";

Deno.test("spawnWithDeadline: a child that finishes keeps its exit code and output", async () => {
  const run = spawnWithDeadline("sh", ["-c", "echo out; echo err >&2; exit 3"], 60_000);
  const out = await run.child.output();
  run.clear();
  assert.equal(out.code, 3);
  assert.equal(new TextDecoder().decode(out.stdout), "out\n");
  assert.equal(new TextDecoder().decode(out.stderr), "err\n");
  assert.equal(run.timedOut, false);
});

Deno.test("spawnWithDeadline: a child past its deadline is SIGKILLed and marked timed out", async () => {
  const run = spawnWithDeadline("sleep", ["600"], 50);
  const out = await run.child.output();
  run.clear();
  assert.equal(out.signal, "SIGKILL");
  assert.equal(run.timedOut, true);
});
