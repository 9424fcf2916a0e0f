import assert from "node:assert/strict";
import { parseRestartFlag, RestartBudget } from "./restart_policy.ts";
import { type Supervisable, SupervisedService } from "./service_supervisor.ts";

Deno.test("--restart: no, on-failure, on-failure:N; bad values name the accepted forms", () => {
  assert.equal(parseRestartFlag("no").mode, "no");
  assert.deepEqual(parseRestartFlag("on-failure"), {
    mode: "on-failure",
    maxRestarts: 10,
    windowMs: 60_000,
  });
  assert.equal(parseRestartFlag("on-failure:3").maxRestarts, 3);
  for (const bad of ["always", "on-failure:0", "on-failure:x", ""]) {
    assert.throws(() => parseRestartFlag(bad), /--restart/);
  }
});

Deno.test("restart budget: at most N in the window, none after a clean exit or with no", () => {
  const b = new RestartBudget(parseRestartFlag("on-failure:2"));
  assert.equal(b.take(137, 0), true);
  assert.equal(b.take(137, 1000), true);
  assert.equal(b.take(137, 2000), false, "third restart within a minute");
  assert.equal(b.take(137, 60_001), true, "the first restart left the window");
  assert.equal(b.take(0, 70_000), false, "a clean exit is not restarted");
  assert.equal(b.total, 3);
  assert.equal(new RestartBudget(parseRestartFlag("no")).take(1, 0), false);
});

/** A stand-in process that dies when told to. */
function fake(pid: number): Supervisable & { die(code: number): void } {
  let die!: (code: number) => void;
  const exited = new Promise<number>((r) => die = r);
  return { pid, exited, signal: null, die };
}

Deno.test("supervisor: restarts a dead process, says so, and gives up at the cap", async () => {
  const lines: string[] = [];
  const made: ReturnType<typeof fake>[] = [fake(1)];
  const svc = new SupervisedService(
    "disk0",
    made[0],
    () => (made.push(fake(made.length + 1)), made.at(-1)!),
    parseRestartFlag("on-failure:2"),
    (l) => lines.push(l),
  );
  made[0].die(137);
  while (made.length < 2) await new Promise((r) => setTimeout(r, 10));
  assert.equal(svc.current.pid, 2);
  made[1].die(1);
  while (made.length < 3) await new Promise((r) => setTimeout(r, 10));
  made[2].die(1);
  const last = await svc.down;
  assert.equal(last.pid, 3);
  assert.equal(svc.restarts, 2);
  assert.match(lines[0], /disk0 exited with code 137; restarting it in 100 ms \(restart 1;/);
  assert.match(lines[1], /restarted disk0 \(pid 2\)/);
  assert.match(lines.at(-1)!, /not restarted: 2 restarts in the last 60 s .* stays down/);
});
