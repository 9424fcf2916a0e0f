import assert from "node:assert/strict";
import { findInPath, LIFELINE_ENV, lifelineSpawnOptions, parentPid } from "./lifeline.ts";
import { processGone } from "./process_gone.ts";

const here = (p: string) => new URL(p, import.meta.url).pathname;

/** Waits until `path` exists (a child wrote its report) and parses it. */
async function readWhenWritten<T>(path: string, ms = 30_000): Promise<T> {
  const until = Date.now() + ms;
  while (true) {
    try {
      return JSON.parse(await Deno.readTextFile(path)) as T;
    } catch (e) {
      if (Date.now() > until) throw new Error(`${path} not written after ${ms} ms: ${e}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Milliseconds until every pid is gone, or the pids still there after `ms`. */
async function untilGone(pids: number[], ms: number): Promise<number | number[]> {
  const t0 = performance.now();
  while (true) {
    const left = pids.filter((p) => !processGone(p));
    if (left.length === 0) return Math.round(performance.now() - t0);
    if (performance.now() - t0 > ms) return left;
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Report {
  pid: number;
  parent?: number;
  pipe?: boolean;
  deathSignal?: boolean;
  none?: boolean;
}

async function startLauncher(dir: string, modes: string[]) {
  const launcher = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", here("./testdata/lifeline_launcher.ts"), dir, ...modes],
    stdin: "null",
    stdout: "null",
  }).spawn();
  const pids = await readWhenWritten<{ nats: number; children: number[] }>(
    `${dir}/launcher.json`,
  );
  const reports = await Promise.all(
    modes.map((_, i) => readWhenWritten<Report>(`${dir}/child${i}.json`)),
  );
  return { launcher, pids, reports };
}

Deno.test("lifelineSpawnOptions: stdin null becomes the pipe; inherit keeps the terminal", () => {
  assert.deepEqual(lifelineSpawnOptions("null"), {
    stdin: "piped",
    env: { [LIFELINE_ENV]: `${Deno.pid}:stdin` },
  });
  assert.deepEqual(lifelineSpawnOptions("inherit"), {
    stdin: "inherit",
    env: { [LIFELINE_ENV]: `${Deno.pid}` },
  });
});

Deno.test("parentPid reads the current parent; findInPath finds setpriv or says undefined", () => {
  assert.equal(parentPid(), Deno.ppid);
  assert.equal(findInPath("no-such-program-vmesh"), undefined);
  assert.equal(findInPath("/no/such/file"), undefined);
  assert.equal(findInPath("sh"), findInPath(findInPath("sh")!));
});

Deno.test("launcher SIGKILLed: nats-server and pipe, signal and pipe-only children all exit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-lifeline-" });
  try {
    const { launcher, pids, reports } = await startLauncher(dir, ["pipe", "signal", "pipe-only"]);
    const [pipe, signal, pipeOnly] = reports;
    assert.deepEqual({ ...pipe, pid: 0 }, {
      pid: 0,
      parent: launcher.pid,
      pipe: true,
      deathSignal: true,
    });
    assert.deepEqual({ ...signal, pid: 0 }, {
      pid: 0,
      parent: launcher.pid,
      pipe: false,
      deathSignal: true,
    });
    assert.deepEqual({ ...pipeOnly, pid: 0 }, {
      pid: 0,
      parent: launcher.pid,
      pipe: true,
      deathSignal: false,
    });
    const all = [pids.nats, ...pids.children];
    assert.deepEqual(all.filter(processGone), [], "everything runs while the launcher lives");
    launcher.kill("SIGKILL");
    await launcher.status;
    const gone = await untilGone(all, 3000);
    assert.equal(typeof gone, "number", `still running 3 s after SIGKILL: ${gone}`);
    console.log(`every child gone ${gone} ms after the launcher's SIGKILL`);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("each mechanism alone: the pipe (no FFI), the death signal (terminal stdin)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-lifeline-" });
  try {
    const { launcher, pids, reports } = await startLauncher(dir, ["signal"]);
    assert.equal(reports[0].deathSignal, true);
    launcher.kill("SIGKILL");
    await launcher.status;
    const gone = await untilGone([pids.nats, ...pids.children], 3000);
    assert.equal(typeof gone, "number", `death signal alone: still running: ${gone}`);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "--allow-run",
      here("./testdata/lifeline_child.ts"),
      `${dir}.pipe.json`,
    ],
    env: { [LIFELINE_ENV]: `${Deno.pid}:stdin` },
    stdin: "piped",
    stdout: "null",
  }).spawn();
  try {
    const r = await readWhenWritten<Report>(`${dir}.pipe.json`);
    assert.deepEqual([r.pipe, r.deathSignal], [true, false]);
    assert.equal(processGone(child.pid), false);
    // What the kernel does when the launcher dies: the write end closes.
    await child.stdin.close();
    const st = await child.status;
    assert.equal(st.code, 0, "the lost pipe ran the child's own SIGTERM handling");
  } finally {
    await Deno.remove(`${dir}.pipe.json`).catch(() => {});
  }
});

Deno.test("started by hand (no VMESH_LIFELINE): nothing armed, runs on with stdin at EOF", async () => {
  const file = await Deno.makeTempFile({ prefix: "vmesh-lifeline-" });
  await Deno.remove(file);
  const env = { ...Deno.env.toObject() };
  delete env[LIFELINE_ENV];
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", here("./testdata/lifeline_child.ts"), file],
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "null",
  }).spawn();
  try {
    const r = await readWhenWritten<Report>(file);
    assert.equal(r.none, true);
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(processGone(child.pid), false, "a hand-started service keeps running");
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(file).catch(() => {});
  }
});

Deno.test({
  name: "the death signal does not fire while the launcher lives (Deno spawns from its JS thread)",
  async fn() {
    // Deno's blocking-pool threads retire after 10 s idle: a child forked from one of them
    // would get its parent-death signal then. Watch a child for longer than that.
    const dir = await Deno.makeTempDir({ prefix: "vmesh-lifeline-" });
    try {
      const { launcher, pids } = await startLauncher(dir, ["signal"]);
      await new Promise((r) => setTimeout(r, 12_000));
      const all = [pids.nats, ...pids.children];
      assert.deepEqual(all.filter(processGone), [], "children alive 12 s after spawn");
      launcher.kill("SIGKILL");
      await launcher.status;
      assert.equal(typeof await untilGone(all, 3000), "number");
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
