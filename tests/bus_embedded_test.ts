// The embedded launcher leaves no nats-server and no store dir behind, whichever
// way its process ends.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { connect, processGone } from "../bus/mod.ts";
import { ServiceProcess } from "../bus/testdata/service_process.ts";

const CHILD = new URL("../bus/testdata/embedded_child.ts", import.meta.url);

async function accepts(port: number): Promise<boolean> {
  try {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    c.close();
    return true;
  } catch {
    return false;
  }
}

async function runChild(mode: string, signal: Deno.Signal = "SIGUSR1") {
  const p = ServiceProcess.start(CHILD, { MODE: mode });
  const started = await p.waitFor((e) => e.event === "started");
  const pid = started.pid as number;
  const port = started.port as number;
  const storeDir = started.storeDir as string;
  assert.ok(pid > 0);
  assert.ok(existsSync(storeDir), "store dir exists while running");
  assert.ok(await accepts(port), "server accepts connections while running");
  assert.equal(processGone(pid), false);
  const status = await p.stop(signal);
  return { status, pid, port, storeDir, stderr: p.stderrLines };
}

function assertCleanedUp(r: { pid: number; storeDir: string }) {
  assert.ok(processGone(r.pid), `nats-server ${r.pid} still running`);
  assert.equal(existsSync(r.storeDir), false, `store dir ${r.storeDir} left behind`);
}

Deno.test("embedded nats: stopped after close() and a normal end", async () => {
  const r = await runChild("close");
  assert.equal(r.status.code, 0, r.stderr.join("\n"));
  assertCleanedUp(r);
  assert.equal(await accepts(r.port), false);
});

Deno.test("embedded nats: stopped when the process calls Deno.exit without closing", async () => {
  const r = await runChild("exit");
  assert.equal(r.status.code, 0, r.stderr.join("\n"));
  assertCleanedUp(r);
});

Deno.test("embedded nats: stopped on Ctrl-C (SIGINT)", async () => {
  const r = await runChild("wait", "SIGINT");
  assert.equal(r.status.code, 130);
  assertCleanedUp(r);
  assert.equal(await accepts(r.port), false);
});

Deno.test("embedded nats: stopped on SIGTERM", async () => {
  const r = await runChild("wait", "SIGTERM");
  assert.equal(r.status.code, 143);
  assertCleanedUp(r);
});

Deno.test("embedded nats: stopped when the process dies of an uncaught error", async () => {
  const r = await runChild("throw");
  assert.notEqual(r.status.code, 0);
  assert.ok(r.stderr.some((l) => l.includes("boom")), r.stderr.join("\n"));
  assertCleanedUp(r);
});

Deno.test("embedded nats: secure by default, anonymous clients refused, the process is admin", async () => {
  const p = ServiceProcess.start(CHILD, { MODE: "wait", VMESH_NATS_USER: "someone-else" });
  try {
    const started = await p.waitFor((e) => e.event === "started");
    // The child's own connection got in (as admin, not as the login meant for another bus).
    const probe = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        new URL("./nats_login_probe.ts", import.meta.url).pathname,
        started.url as string,
      ],
      stdout: "piped",
    }).output();
    assert.match(new TextDecoder().decode(probe.stdout), /^refused: .*authorization/i);
  } finally {
    await p.stop("SIGTERM");
  }
});

Deno.test("embedded nats: connections in one process share one server", async () => {
  const saved = Deno.env.get("NATS_URL");
  Deno.env.delete("NATS_URL");
  try {
    const a = await connect({ name: "a" });
    const b = await connect({ name: "b" });
    assert.equal(a.url, b.url);
    assert.equal(a.embedded?.pid, b.embedded?.pid);
    const pid = a.embedded!.pid;
    await a.close();
    assert.equal(processGone(pid), false, "still used by b");
    await b.nc.flush();
    await b.close();
    assert.ok(processGone(pid));
    assert.equal(existsSync(b.embedded!.storeDir), false);
  } finally {
    if (saved) Deno.env.set("NATS_URL", saved);
  }
});
