// `./vmesh up`: the compose.yaml topology as local processes, discovered on the bus,
// stopped by SIGINT without stray processes; the console implementation swapped by flag.
import assert from "node:assert/strict";
import {
  connect,
  consoleMsgs,
  consoleSubject,
  PASSWORD_ENV,
  processGone,
  readLogin,
  USER_ENV,
} from "@vmesh/bus";
import type { ServiceInfo } from "@nats-io/services";
import { ensureGuestImages, GUEST_SHELL_MARKER } from "../guest/mod.ts";
import { ops as consoleOps } from "../services/console/mod.ts";
import {
  localHttp,
  localKind,
  parseCompose,
  parseUpArgs,
  rewritePaths,
  splitArgs,
  startOrder,
  withConsoleBackend,
} from "../cli/up.ts";
import { readLines } from "./services_harness.ts";
import { buildIdleGuest, IDLE_GUEST_LINE } from "./bare_metal_elf.ts";

const ROOT = new URL("../", import.meta.url).pathname;

interface Up {
  child: Deno.ChildProcess;
  log: string[];
  /** Resolves once a line of up's output contains `text`. */
  waitLine(text: string): Promise<string>;
  natsUrl: string;
  /** The admin login of up's private nats-server (it refuses anonymous clients). */
  auth: { user: string; pass: string };
  pids: number[];
  exited: Promise<number>;
}

/** Runs `./vmesh up args` and resolves once it says everything is running. */
async function up(args: string[]): Promise<Up> {
  const env = Deno.env.toObject();
  delete env.NATS_URL;
  delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const child = new Deno.Command(`${ROOT}vmesh`, {
    args: ["up", ...args],
    env: { ...env, NO_COLOR: "1" },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  const waiters: { text: string; resolve: (line: string) => void }[] = [];
  let onRunning: (line: string) => void = () => {};
  const running = new Promise<string>((r) => onRunning = r);
  const reading = readLines(child.stderr, (line) => {
    log.push(line);
    if (line.startsWith("vmesh up: running: ")) onRunning(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (line.includes(waiters[i].text)) waiters.splice(i, 1)[0].resolve(line);
    }
  });
  const exited = child.status.then(async (s) => (await reading, s.code));
  const first = await Promise.race([running, exited]);
  if (typeof first === "number") {
    throw new Error(`vmesh up exited ${first} before running:\n${log.join("\n")}`);
  }
  const natsUrl = /NATS_URL=(\S+);/.exec(first)?.[1] ?? "";
  const login = await readLogin(/admin login (\S+);/.exec(first)?.[1] ?? "");
  const auth = { user: login[USER_ENV], pass: login[PASSWORD_ENV] };
  const pids = log.flatMap((l) => [...l.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1])));
  const waitLine = (text: string) => {
    const seen = log.find((l) => l.includes(text));
    if (seen) return Promise.resolve(seen);
    const found = new Promise<string>((resolve) => waiters.push({ text, resolve }));
    return Promise.race([
      found,
      exited.then((code) => {
        throw new Error(`vmesh up exited ${code} before "${text}":\n${log.join("\n")}`);
      }),
    ]);
  };
  return { child, log, waitLine, natsUrl, auth, pids, exited };
}

async function requestAll<T>(u: Up, subject: string, count: number): Promise<T[]> {
  const bus = await connect({ url: u.natsUrl, auth: u.auth, name: "up-test", log: () => {} });
  try {
    const out: T[] = [];
    const replies = await bus.nc.requestMany(subject, new Uint8Array(), {
      strategy: "count",
      maxMessages: count,
      maxWait: 10_000,
    });
    for await (const m of replies) out.push(m.json<T>());
    return out;
  } finally {
    await bus.close();
  }
}

async function stopped(u: Up): Promise<void> {
  u.child.kill("SIGINT");
  const code = await u.exited;
  assert.equal(code, 0, u.log.join("\n"));
  assert.ok(u.log.includes("vmesh up: stopped"), u.log.join("\n"));
  for (const pid of u.pids) assert.ok(processGone(pid), `pid ${pid} still running`);
  // The admin login went with the server.
  const login = /admin login (\S+);/.exec(u.log.join("\n"))![1];
  await assert.rejects(Deno.stat(login), Deno.errors.NotFound);
}

/** `./vmesh up --skip cpu` with its volumes in `dir` (a 1 MiB data.ext4 made there first). */
async function upWithoutCpu(dir: string): Promise<Up> {
  await Deno.writeFile(`${dir}/data.ext4`, new Uint8Array(1 << 20));
  return await up([
    "--skip",
    "cpu",
    "--volume",
    `guest-images=${dir}`,
    "--volume",
    `disk-data=${dir}/data`,
  ]);
}

Deno.test("up: the compose topology runs, every device service answers $SRV.PING, SIGINT stops all", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-up-" });
  try {
    // The CPU service joins once `./vmesh boot` runs on the bus; the guest volume is given.
    const u = await upWithoutCpu(dir);
    try {
      assert.match(u.natsUrl, /^nats:\/\/127\.0\.0\.1:\d+$/);
      // A login per service: the bus refuses anonymous clients (tests/nats_login_probe.ts).
      const probe = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", `${ROOT}tests/nats_login_probe.ts`, u.natsUrl],
        stdout: "piped",
      }).output();
      assert.match(new TextDecoder().decode(probe.stdout), /^refused: .*authorization/i);
      assert.ok(u.log.some((l) => /jaeger: skipped/.test(l)), u.log.join("\n"));
      // nats-server plus four device services, the control service and the host agent.
      assert.equal(u.pids.length, 7, u.log.join("\n"));
      const pings = await requestAll<ServiceInfo>(u, "$SRV.PING", 6);
      assert.deepEqual(
        pings.map((p) => p.name).sort(),
        [
          "vmesh-agent",
          "vmesh-console",
          "vmesh-control",
          "vmesh-disk",
          "vmesh-memory",
          "vmesh-net",
        ],
      );
      const [console] = await requestAll<ServiceInfo>(u, "$SRV.INFO.vmesh-console", 1);
      assert.equal(console.metadata?.sinks, "terminal");
      // Every service's --http control endpoint answers /healthz (up lists the URLs).
      const endpoints = u.log.find((l) => l.startsWith("vmesh up: endpoints: ")) ?? "";
      const urls = [...endpoints.matchAll(/(\w+) (http:\/\/\S+?)(,|$)/g)];
      assert.deepEqual(
        urls.map((m) => m[1]).sort(),
        ["console", "control", "disk", "memory", "net"],
      );
      for (const [, name, url] of urls) {
        const h = await fetch(`${url}/healthz`);
        assert.equal(h.status, 200, name);
        assert.equal((await h.json()).service, `vmesh-${name}`);
      }
      const [disk] = await requestAll<ServiceInfo>(u, "$SRV.INFO.vmesh-disk", 1);
      // compose's /images/data.ext4 became the local volume's file.
      assert.equal(disk.metadata?.image, `${dir}/data.ext4`);
      assert.equal(disk.metadata?.overlay, `${dir}/data/disk0.cow`);
    } finally {
      await stopped(u);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("up: --console swaps the console implementation (log file instead of terminal)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-up-" });
  try {
    const logPath = `${dir}/console.log`;
    const u = await up(["--only", "console", "--console", `log:${logPath}`]);
    try {
      assert.ok(u.log.some((l) => l.includes(`--backend log:${logPath}`)), u.log.join("\n"));
      const [info] = await requestAll<ServiceInfo>(u, "$SRV.INFO.vmesh-console", 1);
      assert.equal(info.metadata?.sinks, `log:${logPath}`);
      // Guest output published on the bus lands in the log file, not on a terminal.
      const bus = await connect({
        url: u.natsUrl,
        auth: u.auth,
        name: "up-test-guest",
        log: () => {},
      });
      try {
        const text = "hello from the guest\n";
        bus.publish(consoleMsgs.byteBatch, consoleSubject("vm1", "out"), {
          seq: 0,
          data: new TextEncoder().encode(text),
        });
        await bus.flush();
        let got = "";
        while (got !== text) {
          got = await Deno.readTextFile(logPath).catch(() => "");
          if (got !== text) await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await bus.close();
      }
    } finally {
      await stopped(u);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("up: --console web:0 runs the web terminal console instead", async () => {
  const u = await up(["--only", "console", "--console", "web:0"]);
  try {
    const page = /console web terminal (http:\/\/\S+?)(,|$)/.exec(
      u.log.find((l) => l.startsWith("vmesh up: endpoints: ")) ?? "",
    )?.[1];
    assert.ok(page, u.log.join("\n"));
    const [info] = await requestAll<ServiceInfo>(u, "$SRV.INFO.vmesh-console", 1);
    assert.equal(info.metadata?.sinks, `web:${page}`);
    const html = await (await fetch(page)).text();
    assert.match(html, /<script src="xterm.js"><\/script>/);
  } finally {
    await stopped(u);
  }
});

Deno.test("up: compose.yaml maps to local runners in depends_on order", async () => {
  const services = parseCompose(await Deno.readTextFile(`${ROOT}compose.yaml`));
  const order = startOrder(services);
  const before = (a: string, b: string) =>
    assert.ok(order.indexOf(a) < order.indexOf(b), `${a} < ${b}`);
  before("nats", "disk");
  before("guest", "disk");
  for (const d of services.get("cpu")!.dependsOn) before(d, "cpu");
  assert.deepEqual(localKind(services.get("nats")!), { kind: "nats" });
  assert.deepEqual(localKind(services.get("jaeger")!), { kind: "jaeger" });
  assert.deepEqual(localKind(services.get("guest")!), { kind: "guest" });
  for (const s of ["cpu", "disk", "console", "net", "memory"]) {
    assert.deepEqual(localKind(services.get(s)!), { kind: "deno", entry: `services/${s}/main.ts` });
    // The shared x-service environment came through the merge key.
    assert.equal(services.get(s)!.environment.NATS_URL, "nats://nats:4222");
  }
  assert.deepEqual(startOrder(services, ["disk"]), ["nats", "guest", "disk"]);
  assert.deepEqual(startOrder(services, ["disk"], ["guest"]), ["nats", "disk"]);
});

Deno.test("up: flags, command rewriting and bad compose files", async () => {
  assert.deepEqual(splitArgs(`--a "b c" 'd' e\\ f`), ["--a", "b c", "d", "e f"]);
  assert.throws(() => splitArgs(`"open`), /unterminated/);
  assert.deepEqual(withConsoleBackend(["--vm", "v", "--backend", "terminal"], "web:0"), [
    "--vm",
    "v",
    "--backend",
    "web:0",
  ]);
  assert.deepEqual(
    rewritePaths(["--image", "/images/data.ext4", "--x=/images", "/imagesX"], [["/images", "/l"]]),
    ["--image", "/l/data.ext4", "--x=/l", "/imagesX"],
  );
  assert.deepEqual(
    localHttp(["--http", "0.0.0.0:8080", "--http=9464", "--x"]),
    ["--http", "127.0.0.1:0", "--http=127.0.0.1:0", "--x"],
  );
  assert.deepEqual(
    parseCompose("services:\n  a: {ports: ['8080:80', '9000']}\n").get("a")!.ports,
    new Map([[80, 8080], [9000, 9000]]),
  );
  const o = parseUpArgs([
    "--set",
    "disk.command=--image /x",
    "--set",
    "disk.env.A=1",
    "--only=a,b",
  ]);
  assert.ok(o !== "help");
  assert.deepEqual(o.commands.get("disk"), ["--image", "/x"]);
  assert.deepEqual(o.env.get("disk"), { A: "1" });
  assert.deepEqual(o.only, ["a", "b"]);
  assert.throws(() => parseUpArgs(["--set", "disk.bogus=1"]), /unknown setting/);
  assert.throws(() => parseUpArgs(["--frob"]), /unknown argument/);
  assert.throws(() => parseCompose("services: [1"), /not valid YAML/);
  assert.throws(() => parseCompose("services:\n  a:\n    depends_on: [b]\n"), /unknown service b/);
  const cyclic = parseCompose("services:\n  a: {depends_on: [b]}\n  b: {depends_on: [a]}\n");
  assert.throws(() => startOrder(cyclic), /dependency cycle: a -> b -> a/);

  const bad = await new Deno.Command(`${ROOT}vmesh`, {
    args: ["up", "--only", "nosuch"],
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /^vmesh up: no service nosuch/m);
});

Deno.test("up: the whole topology boots Linux; a command sent to the console runs in the guest", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-up-" });
  try {
    const u = await up([
      "--volume",
      `guest-images=${images.dir}`,
      "--volume",
      `disk-data=${dir}`,
    ]);
    try {
      // nats + 5 services + the control service and host agent.
      assert.equal(u.pids.length, 8, u.log.join("\n"));
      await u.waitLine(GUEST_SHELL_MARKER);
      const bus = await connect({
        url: u.natsUrl,
        auth: u.auth,
        name: "up-test-typist",
        log: () => {},
      });
      try {
        await bus.request({ vm: "vm1", device: "console" }, consoleOps.send, {
          seq: 0,
          data: new TextEncoder().encode("echo up-ok-$((6*7))\n"),
        }, { timeoutMs: 5000 });
      } finally {
        await bus.close();
      }
      const line = await u.waitLine("up-ok-42");
      assert.match(line, /^console +\| up-ok-42$/);
      // The guest's writes went to the overlay in the disk-data volume, not the cached image.
      assert.ok((await Deno.stat(`${dir}/disk0.cow`)).isFile);
    } finally {
      await stopped(u);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("up: --set swaps the disk backend (raw image instead of the compose COW overlay)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-up-" });
  try {
    const image = `${dir}/raw.img`;
    await Deno.writeFile(image, new Uint8Array(1 << 20));
    const u = await up([
      "--only",
      "disk",
      "--volume",
      `guest-images=${dir}`,
      "--set",
      `disk.command=--vm vm1 --device disk0 --image ${image}`,
    ]);
    try {
      const [disk] = await requestAll<ServiceInfo>(u, "$SRV.INFO.vmesh-disk", 1);
      assert.equal(disk.metadata?.image, image);
      assert.equal(disk.metadata?.overlay, undefined, "raw backend has no overlay");
    } finally {
      await stopped(u);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("up: ./vmesh create works right after ./vmesh up (control service and agent on the secured bus)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-up-" });
  try {
    const kernel = await buildIdleGuest(dir);
    const u = await upWithoutCpu(dir);
    try {
      // Every process has a login of its own role: none was left without one.
      assert.ok(!u.log.some((l) => /no bus role for it/.test(l)), u.log.join("\n"));
      // The commands find up's bus by themselves (.vmesh/up/bus.env), as docker finds dockerd.
      const vmesh = async (...args: string[]) => {
        const env = Deno.env.toObject();
        delete env.NATS_URL;
        delete env[USER_ENV];
        delete env[PASSWORD_ENV];
        const o = await new Deno.Command(`${ROOT}vmesh`, {
          args,
          env: { ...env, NO_COLOR: "1" },
          clearEnv: true,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const d = new TextDecoder();
        return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
      };
      const made = await vmesh("create", "--kernel", kernel, "-m", "64M", "-o", "json", "upvm");
      assert.equal(made.code, 0, made.err);
      const vm = JSON.parse(made.out);
      assert.equal(vm.state, "running");
      // The guest's output went from the agent's VM processes through the console service.
      let logs = "";
      for (let i = 0; i < 100 && !logs.includes(IDLE_GUEST_LINE); i++) {
        logs = (await vmesh("logs", "upvm")).out;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.match(logs, new RegExp(IDLE_GUEST_LINE));
      const hosts = await vmesh("hosts", "-o", "json");
      assert.equal(JSON.parse(hosts.out)[0].vms, 1, hosts.out);
      const rm = await vmesh("rm", "-f", "upvm");
      assert.equal(rm.code, 0, rm.err);
      // No permission violation in the logs of up's services (control and agent among them).
      assert.ok(!u.log.some((l) => /[Pp]ermissions? [Vv]iolation/.test(l)), u.log.join("\n"));
    } finally {
      await stopped(u);
    }
    await assert.rejects(Deno.stat(`${ROOT}.vmesh/up/bus.env`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
