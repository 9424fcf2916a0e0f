/**
 * The snapshot commands as a user runs them, on a real nats-server with `./vmesh boot`'s
 * processes and a real Linux guest: `./vmesh snapshot VM --name N` prints what it stored,
 * `./vmesh snapshots` lists it with VM, RAM, size and age, `./vmesh restore N --name NEW`
 * runs the guest on from it on a copy of the disk point (the counter continues in NEW's
 * console log), and
 * `./vmesh snapshots --rm N` removes it; a restore of an unknown name is one clear line.
 */
import assert from "node:assert/strict";
import { connect, startEmbeddedNats } from "@vmesh/bus";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { ensureGuestImages } from "../guest/mod.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

function vmesh(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function run(args: string[], env: Record<string, string>) {
  const out = await vmesh(args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 180_000) {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const tickNumbers = (text: string) =>
  [...text.matchAll(/tick (\d+) kept\r?\n/g)].map((m) => Number(m[1]));

Deno.test("./vmesh snapshot, snapshots, restore, snapshots --rm", async () => {
  await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-snapshot-cli-" });
  const nats = await startEmbeddedNats();
  const env = { NATS_URL: nats.url };
  const bus = await connect({ url: nats.url, name: "test-snapshot-cli", log: () => {} });
  const store = ["--store", `dir:${dir}/store`];
  const cap = new ConsoleCapture(bus, "cliA");
  let boot: Deno.ChildProcess | undefined;
  let restore: Deno.ChildProcess | undefined;
  try {
    boot = vmesh([
      "boot",
      "--name",
      "cliA",
      "--",
      'echo kept > /tmp/f; i=0; while true; do i=$((i+1)); echo "tick $i $(cat /tmp/f)"; sleep 1; done',
    ], env);
    await until("ticks from the booted guest", () => tickNumbers(cap.text).length >= 2);

    const before = Math.max(...tickNumbers(cap.text));
    const snap = await run(
      ["snapshot", "cliA", "--name", "cli-1", "--disk-dir", `${dir}/points`, ...store],
      env,
    );
    assert.equal(snap.code, 0, snap.stderr);
    assert.match(snap.stdout, /^cli-1: 65536 pages, \d+ zero, \d+ distinct .* guest held \d+ ms/);
    const after = Math.max(...tickNumbers(cap.text));

    const list = await run(["snapshots", ...store], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME +VM +RAM +SIZE +AGE\n/);
    assert.match(list.stdout, /\ncli-1 +cliA +256M +\d+\.\dM +\d+s\n/);

    boot.kill("SIGTERM");
    await boot.output();
    boot = undefined;

    const missing = await run(["restore", "nosuch", "--name", "cliB", ...store], env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no snapshot nosuch .*\(\.\/vmesh snapshots lists them\)/);

    const log = `${dir}/cliB.log`;
    restore = vmesh(
      ["restore", "cli-1", "--name", "cliB", "--console", `log:${log}`, ...store],
      env,
    );
    const text = async () => await Deno.readTextFile(log).catch(() => "");
    await until(
      "two ticks from the restored guest",
      async () => tickNumbers(await text()).length >= 2,
    );
    const got = tickNumbers(await text());
    assert.ok(got[0] > before && got[0] <= after + 1, `restored at ${got[0]}: ${before}..${after}`);
    assert.doesNotMatch(await text(), /Linux version/);
    restore.kill("SIGTERM");
    const r = await restore.output();
    restore = undefined;
    assert.equal(r.code, 143, new TextDecoder().decode(r.stderr));
    const said = new TextDecoder().decode(r.stderr);
    assert.match(said, /VM cliB runs from snapshot cli-1/);
    assert.match(
      said,
      /disk disk0: .* with a copy of the snapshot's point .*cliA\.disk0\.cli-1\.cow/,
    );

    const rm = await run(["snapshots", "--rm", "cli-1", ...store], env);
    assert.equal(rm.code, 0, rm.stderr);
    assert.doesNotMatch((await run(["snapshots", ...store], env)).stdout, /cli-1/);
  } finally {
    cap.close();
    for (const c of [boot, restore]) {
      if (!c) continue;
      try {
        c.kill("SIGKILL");
      } catch { /* gone */ }
      await c.output().catch(() => {});
    }
    await bus.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
