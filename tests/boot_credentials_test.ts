/**
 * Issue 14, who may talk to whom, end to end: a real `./vmesh boot` of VM A (bare-metal guest,
 * a disk, a nic) runs its private nats-server with a login per service. An anonymous client is
 * refused with an authorization error. With the login the launcher gave A's CPU service (read
 * from that process's environment, as a compromised CPU service would have it), a client
 * cannot subscribe to VM B's console, disk or frames, nor publish to B's disk, ctl ops or
 * port; B is a second real `./vmesh boot` on A's bus. Each refusal is a permission error from
 * the server and a line in the log; a real disk service started with A's CPU login for B's
 * disk logs its refusals too.
 */
import assert from "node:assert/strict";
import type { NatsConnection } from "@nats-io/transport-node";
import {
  type Bus,
  connect,
  net,
  PASSWORD_ENV,
  PERMISSION_VIOLATION,
  processGone,
  readLogin,
  USER_ENV,
  vm,
} from "@vmesh/bus";
import { buildBareMetalElf, uartGuest } from "./bare_metal_elf.ts";
import { readLines } from "./services_harness.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const MAIN = `${ROOT}cli/main.ts`;
/** Generous guard against a hang on a loaded machine; the boots take a few seconds. */
const WAIT_MS = 120_000;

/** A running process whose stderr lines are kept and can be waited for. */
interface Watched {
  child: Deno.ChildProcess;
  lines: string[];
  /** The first line (seen or to come) matching `re`; rejects if the process ends first. */
  line(re: RegExp): Promise<string>;
  exited: Promise<number>;
}

function watch(child: Deno.ChildProcess): Watched {
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const reading = readLines(child.stderr, (l) => {
    lines.push(l);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].re.test(l)) waiters.splice(i, 1)[0].resolve(l);
    }
  });
  const exited = child.status.then(async (s) => (await reading, s.code));
  const line = (re: RegExp) => {
    const seen = lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      new Promise<string>((resolve) => waiters.push({ re, resolve })),
      exited.then((code) => {
        throw new Error(`exited ${code} before a line matching ${re}:\n${lines.join("\n")}`);
      }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no line matching ${re} in ${WAIT_MS} ms:\n${lines.join("\n")}`)),
          WAIT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  };
  return { child, lines, line, exited };
}

/** `./vmesh boot --verbose ARGS` with `env`, NATS_URL taken from `env` only. */
function boot(args: string[], env: Record<string, string> = {}): Watched {
  const base = Deno.env.toObject();
  delete base.NATS_URL;
  delete base[USER_ENV];
  delete base[PASSWORD_ENV];
  return watch(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", MAIN, "boot", "--verbose", ...args],
      env: { ...base, NO_COLOR: "1", ...env },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn(),
  );
}

/** The environment of process `pid` (/proc/<pid>/environ). */
function environOf(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const kv of Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0")) {
    const eq = kv.indexOf("=");
    if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return env;
}

/**
 * One login attempt in a process of its own (tests/nats_login_probe.ts): its outcome line.
 * `url` may start with `--bus ` (log in through @vmesh/bus's connect()).
 */
async function probeLogin(url: string, user?: string, pass?: string): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      `${ROOT}tests/nats_login_probe.ts`,
      ...url.split(" "),
      ...(user ? [user, pass!] : []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

/** Status errors of a connection, and a wait for the next one matching. */
class ErrorWatch {
  readonly seen: string[] = [];
  #waiters: { re: RegExp; resolve: (s: string) => void }[] = [];

  constructor(nc: NatsConnection) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type !== "error") continue;
        const text = s.error.message;
        this.seen.push(text);
        for (let i = this.#waiters.length - 1; i >= 0; i--) {
          if (this.#waiters[i].re.test(text)) this.#waiters.splice(i, 1)[0].resolve(text);
        }
      }
    })();
  }

  /** The next error matching `re` (reported after this call). */
  next(re: RegExp): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    return Promise.race([
      new Promise<string>((resolve) => this.#waiters.push({ re, resolve })),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no error matching ${re} in 10 s`)), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
  }
}

Deno.test("vmesh boot credentials: anonymous refused; VM A's CPU login cannot reach VM B", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-creds-test-" });
  const procs: Watched[] = [];
  const conns: Bus[] = [];
  try {
    const elfA = await buildBareMetalElf(dir, "a", uartGuest("guest A up", "wfi"));
    const elfB = await buildBareMetalElf(dir, "b", uartGuest("guest B up", "wfi"));
    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1 << 20));
    await Deno.writeFile(`${dir}/b.img`, new Uint8Array(1 << 20));
    const vmArgs = (name: string, elf: string) => [
      "--name",
      name,
      "--bios",
      "none",
      "--kernel",
      elf,
      "--drive",
      `${dir}/${name}.img`,
      "--nic",
      "switch=swc",
      "--console",
      `log:${dir}/${name}.console.log`,
    ];
    const a = boot(vmArgs("a", elfA));
    procs.push(a);
    const loginFile = /admin login for tools in (\S+) \(0600/.exec(
      await a.line(/admin login for tools in /),
    )![1];
    assert.equal((await Deno.stat(loginFile)).mode! & 0o777, 0o600, loginFile);
    const admin = await readLogin(loginFile);
    const url = admin.NATS_URL;
    assert.match(url, /^nats:\/\/127\.0\.0\.1:\d+$/);
    await a.line(/\[vmesh-cpu\] vmesh-cpu ready: /);
    const cpuPid = Number(/started vmesh-cpu \(pid (\d+)\)/.exec(a.lines.join("\n"))![1]);

    // The launcher handed each child its own login in the environment, never on argv.
    const pids = [...a.lines.join("\n").matchAll(/started (vmesh-\S+)[^(]*\(pid (\d+)\)/g)];
    assert.equal(pids.length, 4, a.lines.join("\n")); // console, disk0, net swc, cpu
    const users = new Map<string, string>();
    for (const [, label, pid] of pids) {
      const env = environOf(Number(pid));
      users.set(label, env[USER_ENV]);
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
      assert.ok(!cmdline.includes(env[PASSWORD_ENV]), `${label}: password on argv`);
    }
    assert.deepEqual(Object.fromEntries(users), {
      "vmesh-console": "console-a",
      "vmesh-disk": "disk-a-disk0",
      "vmesh-net": "switch-swc",
      "vmesh-cpu": "cpu-a",
    });
    const cpuEnv = environOf(cpuPid);
    const cpuA = { user: cpuEnv[USER_ENV], pass: cpuEnv[PASSWORD_ENV] };
    assert.match(cpuA.pass, /^[0-9a-f]{32}$/);

    // Anonymous: refused at connect with an authorization error; so is a wrong password.
    assert.match(await probeLogin(url), /^refused: .*authorization/i);
    assert.match(await probeLogin(url, "cpu-a", "0".repeat(32)), /^refused: .*authorization/i);
    assert.equal(await probeLogin(url, cpuA.user, cpuA.pass), "connected");
    // A vmesh tool without a login is told where the admin login is.
    assert.match(
      await probeLogin(`--bus ${url}`),
      /refused an anonymous client: set VMESH_NATS_USER and VMESH_NATS_PASSWORD .*bus\.env/,
    );

    // VM B: a second real boot on A's bus (its services log in as the admin, from the file).
    const b = boot(vmArgs("b", elfB), admin);
    procs.push(b);
    await b.line(/switch swc: already on the bus/);
    await b.line(/\[vmesh-cpu\] vmesh-cpu ready: /);

    const adminBus = await connect({
      url,
      name: "test-admin",
      auth: { user: "admin", pass: admin[PASSWORD_ENV] },
    });
    conns.push(adminBus);
    // B runs once the launcher's start reaches it (after its services answer), not at "ready".
    const t0 = Date.now();
    for (;;) {
      const s = await adminBus.request({ vm: "b", device: "ctl" }, vm.ops.status, {});
      if (s.state === vm.State.RUNNING) break;
      assert.ok(Date.now() - t0 < 30_000, `B never ran: state ${s.state}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const logged: string[] = [];
    const stolen = await connect({
      url,
      name: "stolen-cpu-a",
      auth: cpuA,
      log: (l) => logged.push(l),
    });
    conns.push(stolen);
    const nc = stolen.nc;
    const errors = new ErrorWatch(nc);

    // A's CPU login subscribes to B's console, disk ops and frames: each refused.
    for (
      const subject of [
        "vmesh.b.console.out",
        "vmesh.b.disk0.read",
        "vmesh.net.swc.port.b-net0.rx",
        "vmesh.b.ctl.stop",
        "vmesh.>",
        "_INBOX.cpu-b.>",
      ]
    ) {
      const refused = errors.next(/Permissions Violation for Subscription/i);
      const got: Uint8Array[] = [];
      nc.subscribe(subject, {
        // A refused subscription is called once with the error (and an empty message).
        callback: (e, m) => {
          if (!e) got.push(m.data);
        },
      });
      const err = await refused;
      assert.ok(err.includes(subject), `${subject}: ${err}`);
      // The subject does carry traffic: the admin sees a message that A's login never gets.
      if (!subject.includes(">")) {
        const seen = adminBus.nc.subscribe(subject);
        await adminBus.nc.flush();
        adminBus.nc.publish(subject, new Uint8Array([7]));
        // B's own traffic (its guest's output) may come first.
        for await (const m of seen) if (m.data.length === 1 && m.data[0] === 7) break;
        await nc.flush();
        assert.equal(got.length, 0, subject);
      }
    }
    // A's CPU login publishes to B's disk, B's control ops and B's port, and joins or leaves on
    // B's port or the switch's shared subjects: each refused.
    for (
      const subject of [
        "vmesh.b.disk0.write",
        "vmesh.b.ctl.stop",
        "vmesh.b.console.in",
        "vmesh.net.swc.port.b-net0.tx",
        "vmesh.net.swc.port.b-net0.join",
        "vmesh.net.swc.port.b-net0.leave",
        "vmesh.net.swc.join",
        "vmesh.net.swc.leave",
      ]
    ) {
      const refused = errors.next(/Permissions Violation for Publish/i);
      nc.publish(subject, new Uint8Array([1]));
      const err = await refused;
      assert.ok(err.includes(subject), `${subject}: ${err}`);
    }
    // A join on its own port's subject naming B's port is refused by the switch.
    await assert.rejects(
      stolen.request({ prefix: "vmesh.net.swc.port.a-net0" }, net.ops.join, {
        switch: "swc",
        mac: "52:54:00:00:00:66",
        portId: "b-net0",
      }),
      (e: Error & { status?: string }) => e.status === "INVALID_ARGUMENT",
    );
    // The forged stop never reached B: B's CPU still runs its guest.
    const status = await adminBus.request({ vm: "b", device: "ctl" }, vm.ops.status, {});
    assert.equal(status.state, vm.State.RUNNING);
    // Each refusal is a log line naming the user, the operation and the subject.
    for (const s of ["vmesh.b.console.out", "vmesh.b.disk0.read", "vmesh.net.swc.port.b-net0.rx"]) {
      assert.ok(
        logged.some((l) =>
          l.includes(PERMISSION_VIOLATION) && l.includes("user cpu-a") &&
          l.includes(`subscribe to ${s}`)
        ),
        `${s}:\n${logged.join("\n")}`,
      );
    }
    for (const s of ["vmesh.b.ctl.stop", "vmesh.net.swc.port.b-net0.tx"]) {
      assert.ok(
        logged.some((l) => l.includes(PERMISSION_VIOLATION) && l.includes(`publish to ${s}`)),
        `${s}:\n${logged.join("\n")}`,
      );
    }
    // A's own subjects still work with its login: B's refusals are not a broken login.
    const outA = adminBus.nc.subscribe("vmesh.a.console.out", { max: 1 });
    await adminBus.nc.flush();
    nc.publish("vmesh.a.console.out", new Uint8Array([9]));
    for await (const m of outA) assert.deepEqual([...m.data], [9]);

    // A real disk service started with A's CPU login to serve B's disk: refused, and logged.
    const disk = watch(
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          `${ROOT}services/disk/main.ts`,
          "--vm",
          "b",
          "--device",
          "disk9",
          "--image",
          `${dir}/b.img`,
        ],
        env: { NATS_URL: url, [USER_ENV]: cpuA.user, [PASSWORD_ENV]: cpuA.pass, NO_COLOR: "1" },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn(),
    );
    procs.push(disk);
    const line = await disk.line(new RegExp(`${PERMISSION_VIOLATION}.*vmesh\\.b\\.disk9\\.`));
    assert.match(line, /user cpu-a/);
    assert.match(line, /subscribe to vmesh\.b\.disk9\./);
    // A's CPU login calls A's own control ops (its --http /vm API does).
    const own = await stolen.request({ vm: "a", device: "ctl" }, vm.ops.status, {});
    assert.equal(own.state, vm.State.RUNNING);
    // VM A's own services, each on its own login, were never refused anything.
    const refusedA = [...a.lines, ...b.lines].filter((l) => l.includes(PERMISSION_VIOLATION));
    assert.deepEqual(refusedA, []);
    // A's console login may stop A (Ctrl-A x), not B.
    const consolePid = Number(/started vmesh-console \(pid (\d+)\)/.exec(a.lines.join("\n"))![1]);
    const conEnv = environOf(consolePid);
    const consoleA = await connect({
      url,
      name: "console-a-login",
      auth: { user: conEnv[USER_ENV], pass: conEnv[PASSWORD_ENV] },
      log: (l) => logged.push(l),
    });
    conns.push(consoleA);
    const conErrors = new ErrorWatch(consoleA.nc);
    const refused = conErrors.next(/Permissions Violation for Publish to "vmesh\.b\.ctl\.stop"/);
    consoleA.nc.publish("vmesh.b.ctl.stop", new Uint8Array());
    await refused;
    assert.equal(
      (await adminBus.request({ vm: "b", device: "ctl" }, vm.ops.status, {})).state,
      vm.State.RUNNING,
    );
    // B goes first: its services are on A's bus, which ends with A.
    b.child.kill("SIGTERM");
    assert.equal(await b.exited, 143, b.lines.join("\n"));
    await consoleA.request({ vm: "a", device: "ctl" }, vm.ops.stop, {});
    for (const c of conns) await c.close();
    assert.equal(await a.exited, 0, a.lines.join("\n"));
  } finally {
    // close, not drain: the server may be gone already.
    for (const c of conns) await c.nc.close().catch(() => {});
    for (const p of procs.reverse()) {
      if (!processGone(p.child.pid)) p.child.kill("SIGTERM");
      await p.exited;
    }
    await Deno.remove(dir, { recursive: true });
  }
});
