/**
 * `./vmesh up`: runs the topology of compose.yaml (the one source of truth) as local
 * processes: `nats` → a private embedded nats-server (or $NATS_URL), `jaeger` → skipped
 * (or $OTEL_EXPORTER_OTLP_ENDPOINT), `guest` → the cached guest images, and every service
 * built from `services/<x>/Dockerfile` → `deno run -A services/<x>/main.ts <command>` with
 * the compose environment. Started in `depends_on` order (each waits for the previous
 * ones to say ` ready: `), stopped in reverse on Ctrl-C, SIGTERM, a service exit or an
 * error. Unless `--no-control`, the control plane runs too: a control service and this
 * host's agent (services/control, services/agent), so `./vmesh create` works beside it.
 * @module
 */

import { parse as parseYaml } from "yaml";
import {
  BusCredentials,
  type BusRole,
  lifelineSpawnOptions,
  PASSWORD_ENV,
  startEmbeddedNats,
  USER_ENV,
  writeAdminLogin,
} from "@vmesh/bus";
import { serviceRole } from "./service_role.ts";
import { publishUpLogin, UP_LOGIN } from "./up_login.ts";
import { ensureGuestImages } from "../guest/mod.ts";

const ROOT = new URL("../", import.meta.url).pathname;

const USAGE = `Usage: ./vmesh up [options]

Runs the compose.yaml topology as local processes (no containers): nats → a private
nats-server (or $NATS_URL), jaeger → skipped (traces go to $OTEL_EXPORTER_OTLP_ENDPOINT
when set), guest → the cached guest images (built once, see ./vmesh guest), and each
services/<x>/Dockerfile service → deno run -A services/<x>/main.ts <its command>.
Services start in depends_on order and stop in reverse on Ctrl-C / SIGTERM, or when one
of them exits (e.g. Ctrl-A x in the terminal console). The control plane runs too: a
control service and a host agent for this machine (services "control" and "agent"), so
./vmesh create, ls, console ... work from another terminal (they find the bus in
${UP_LOGIN.replace(/^.*\/\.vmesh\//, ".vmesh/")} while up runs).

Options:
  --file PATH              compose file (default compose.yaml in the repository)
  --only a,b               run only these services (and what they depend on)
  --skip a,b               do not run these services
  --console SPEC           console backend instead of the compose one: terminal, log:PATH,
                           web:[HOST:]PORT (replaces the console's --backend flags)
  --service NAME=ENTRY     run ENTRY (a .ts file) for NAME instead of services/NAME/main.ts,
                           with the same command and environment
  --set NAME.command=ARGS  replace NAME's command (split like a shell line)
  --set NAME.env.KEY=VAL   set an environment variable of NAME
  --volume VOL=DIR         use DIR for the named volume VOL (e.g. guest-images=/tmp/img;
                           the guest build is skipped when all its volumes are given)
  --ready-timeout SECONDS  how long a service may take to say ready (default 300)
  --no-control             no control service and host agent
  -h, --help               this text

Examples:
  ./vmesh up                                   # everything, terminal console
  ./vmesh up --console web:8090                # console in the browser
  ./vmesh up --only disk,console               # nats + guest + disk + console
  ./vmesh up --set disk.command="--image /tmp/x.img --device disk1"`;

/** A compose file problem or a bad flag, reported as one line. */
export class UpError extends Error {}

/** A volume mount of a service. */
export interface Mount {
  /** Named volume or host path. */
  source: string;
  target: string;
  /** True for a named volume (not a host path). */
  named: boolean;
}

/** One service of the compose file, normalised. */
export interface ComposeService {
  name: string;
  image?: string;
  /** `build.dockerfile` relative to the build context (context "." = the compose dir). */
  dockerfile?: string;
  command: string[];
  environment: Record<string, string>;
  dependsOn: string[];
  volumes: Mount[];
  /** `stdin_open` or `tty`: gets the terminal when up runs on one. */
  interactive: boolean;
  /** Published ports: container port → host port. */
  ports: Map<number, number>;
}

/** Splits a command line like a shell does for words and quotes (no expansion). */
export function splitArgs(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let word = false;
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = "";
      else if (ch === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      word = true;
    } else if (ch === "\\" && i + 1 < line.length) {
      cur += line[++i];
      word = true;
    } else if (/\s/.test(ch)) {
      if (word) out.push(cur);
      cur = "";
      word = false;
    } else {
      cur += ch;
      word = true;
    }
  }
  if (quote) throw new UpError(`unterminated ${quote} in ${JSON.stringify(line)}`);
  if (word) out.push(cur);
  return out;
}

function asRecord(v: unknown, what: string): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw new UpError(`${what} must be a mapping`);
  return v as Record<string, unknown>;
}

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return splitArgs(v);
  if (!Array.isArray(v)) throw new UpError(`${what} must be a list or a string`);
  return v.map((x) => {
    if (typeof x === "object" && x !== null) throw new UpError(`${what}: bad entry ${x}`);
    return String(x);
  });
}

/** Parses compose YAML (with `<<` merge keys) into services by name. */
export function parseCompose(text: string): Map<string, ComposeService> {
  let doc: unknown;
  try {
    doc = parseYaml(text, { merge: true });
  } catch (e) {
    throw new UpError(`not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  const top = asRecord(doc, "the compose file");
  const services = asRecord(top.services, "services");
  const out = new Map<string, ComposeService>();
  for (const [name, raw] of Object.entries(services)) {
    const s = asRecord(raw, `services.${name}`);
    const environment: Record<string, string> = {};
    if (Array.isArray(s.environment)) {
      for (const kv of s.environment) {
        const [k, ...v] = String(kv).split("=");
        environment[k] = v.join("=");
      }
    } else {
      for (const [k, v] of Object.entries(asRecord(s.environment, `${name}.environment`))) {
        environment[k] = v === null || v === undefined ? "" : String(v);
      }
    }
    const dependsOn = Array.isArray(s.depends_on)
      ? s.depends_on.map(String)
      : Object.keys(asRecord(s.depends_on, `${name}.depends_on`));
    const volumes: Mount[] = stringList(s.volumes, `${name}.volumes`).map((v) => {
      const [source, target] = v.split(":");
      if (!source || !target) throw new UpError(`${name}.volumes: bad entry ${v}`);
      return { source, target, named: !/^[./~]/.test(source) };
    });
    const build = typeof s.build === "string"
      ? { context: s.build }
      : asRecord(s.build, `${name}.build`);
    let dockerfile: string | undefined;
    if (s.build !== undefined) {
      const ctx = String(build.context ?? ".").replace(/^\.\/?/, "").replace(/\/$/, "");
      const file = String(build.dockerfile ?? "Dockerfile");
      dockerfile = ctx ? `${ctx}/${file}` : file;
    }
    const ports = new Map<number, number>();
    for (const p of stringList(s.ports, `${name}.ports`)) {
      const parts = p.split("/")[0].split(":");
      const container = Number(parts.at(-1));
      const host = parts.length > 1 ? Number(parts.at(-2)) : container;
      if (!Number.isInteger(container) || !Number.isInteger(host)) {
        throw new UpError(`${name}.ports: bad entry ${p}`);
      }
      ports.set(container, host);
    }
    out.set(name, {
      name,
      ports,
      image: typeof s.image === "string" ? s.image : undefined,
      dockerfile,
      command: stringList(s.command, `${name}.command`),
      environment,
      dependsOn,
      volumes,
      interactive: s.stdin_open === true || s.tty === true,
    });
  }
  for (const s of out.values()) {
    for (const d of s.dependsOn) {
      if (!out.has(d)) throw new UpError(`service ${s.name} depends on unknown service ${d}`);
    }
  }
  return out;
}

/**
 * The start order of `wanted` (all when empty) plus their dependencies, minus `skip`;
 * dependencies first, file order otherwise. Throws on a dependency cycle.
 */
export function startOrder(
  services: Map<string, ComposeService>,
  wanted: string[] = [],
  skip: string[] = [],
): string[] {
  for (const n of [...wanted, ...skip]) {
    if (!services.has(n)) throw new UpError(`no service ${n} in the compose file`);
  }
  const order: string[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (name: string, path: string[]) => {
    if (skip.includes(name)) return;
    const st = state.get(name);
    if (st === "done") return;
    if (st === "visiting") {
      throw new UpError(`dependency cycle: ${[...path, name].join(" -> ")}`);
    }
    state.set(name, "visiting");
    for (const d of services.get(name)!.dependsOn) visit(d, [...path, name]);
    state.set(name, "done");
    order.push(name);
  };
  for (const name of wanted.length ? wanted : services.keys()) visit(name, []);
  return order;
}

/** How a compose service runs here. */
export type LocalKind =
  | { kind: "nats" }
  | { kind: "jaeger" }
  | { kind: "guest" }
  | { kind: "deno"; entry: string }
  | { kind: "unsupported"; why: string };

/** The `services/<x>` a compose service is built from (its Dockerfile), if any. */
function builtService(s: ComposeService): string | undefined {
  return /^services\/([A-Za-z0-9_-]+)\/Dockerfile$/.exec(s.dockerfile ?? "")?.[1];
}

/** Maps a compose service to a local way of running it. */
export function localKind(s: ComposeService, entryOverride?: string): LocalKind {
  if (entryOverride) return { kind: "deno", entry: entryOverride };
  const image = s.image ?? "";
  if (/^(docker\.io\/)?(library\/)?nats(:|$)/.test(image)) return { kind: "nats" };
  if (image.includes("jaeger")) return { kind: "jaeger" };
  if (s.dockerfile === "guest/Dockerfile") return { kind: "guest" };
  const built = builtService(s);
  if (built) return { kind: "deno", entry: `services/${built}/main.ts` };
  return { kind: "unsupported", why: `image ${image || s.dockerfile || "?"} has no local runner` };
}

/** Parsed flags of `vmesh up`. */
export interface UpOptions {
  file: string;
  only: string[];
  skip: string[];
  console?: string;
  entries: Map<string, string>;
  commands: Map<string, string[]>;
  env: Map<string, Record<string, string>>;
  volumes: Map<string, string>;
  readyTimeoutMs: number;
  /** Run the control service and a host agent (default). */
  control: boolean;
}

/** Parses the command line of `vmesh up`; "help" for -h. */
export function parseUpArgs(args: string[]): UpOptions | "help" {
  const o: UpOptions = {
    file: `${ROOT}compose.yaml`,
    only: [],
    skip: [],
    entries: new Map(),
    commands: new Map(),
    env: new Map(),
    volumes: new Map(),
    readyTimeoutMs: 300_000,
    control: true,
  };
  const list = (v: string) => v.split(",").map((x) => x.trim()).filter(Boolean);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") return "help";
    const eq = a.startsWith("--") ? a.indexOf("=") : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const value = () => {
      if (eq > 0) return a.slice(eq + 1);
      if (i + 1 >= args.length) throw new UpError(`${flag} needs a value`);
      return args[++i];
    };
    const pair = (v: string, what: string): [string, string] => {
      const k = v.indexOf("=");
      if (k <= 0) throw new UpError(`${flag} needs ${what}, got '${v}'`);
      return [v.slice(0, k), v.slice(k + 1)];
    };
    switch (flag) {
      case "--file":
        o.file = value();
        break;
      case "--only":
        o.only.push(...list(value()));
        break;
      case "--skip":
        o.skip.push(...list(value()));
        break;
      case "--console":
        o.console = value();
        break;
      case "--service": {
        const [name, entry] = pair(value(), "NAME=ENTRY");
        o.entries.set(name, entry);
        break;
      }
      case "--set": {
        const [key, v] = pair(value(), "NAME.command=ARGS or NAME.env.KEY=VALUE");
        const m = /^([^.]+)\.(command|env\.(.+))$/.exec(key);
        if (!m) throw new UpError(`--set: unknown setting '${key}' (NAME.command, NAME.env.KEY)`);
        if (m[2] === "command") o.commands.set(m[1], splitArgs(v));
        else o.env.set(m[1], { ...o.env.get(m[1]), [m[3]]: v });
        break;
      }
      case "--volume": {
        const [vol, dir] = pair(value(), "VOLUME=DIR");
        o.volumes.set(vol, dir);
        break;
      }
      case "--no-control":
        o.control = false;
        break;
      case "--ready-timeout": {
        const v = value();
        if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) {
          throw new UpError(`--ready-timeout needs a positive number of seconds, got '${v}'`);
        }
        o.readyTimeoutMs = Number(v) * 1000;
        break;
      }
      default:
        throw new UpError(`unknown argument '${a}'`);
    }
  }
  return o;
}

/**
 * Adds the control plane to a compose topology that lacks it: `control` (the control
 * service) and `agent` (this machine's host agent, named after its hostname), as if compose
 * built them from services/<x>/Dockerfile, after every other service.
 */
export function withControlPlane(
  services: Map<string, ComposeService>,
  agentDir: string,
): Map<string, ComposeService> {
  const out = new Map(services);
  const host = Deno.hostname().replace(/[^A-Za-z0-9_-]/g, "-") || "host";
  const bus = services.has("nats") ? ["nats"] : [];
  const local = (name: string, command: string[], dependsOn: string[]): ComposeService => ({
    name,
    dockerfile: `services/${name}/Dockerfile`,
    command,
    environment: {},
    dependsOn,
    volumes: [],
    interactive: false,
    ports: new Map(),
  });
  if (!out.has("control")) out.set("control", local("control", ["--http", "0"], bus));
  if (!out.has("agent")) {
    out.set("agent", local("agent", ["--host", host, "--dir", agentDir], ["control"]));
  }
  return out;
}

/** Replaces every `--backend X` / `--backend=X` of a console command with `--backend spec`. */
export function withConsoleBackend(command: string[], spec: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < command.length; i++) {
    if (command[i] === "--backend") i++;
    else if (!command[i].startsWith("--backend=")) out.push(command[i]);
  }
  return [...out, "--backend", spec];
}

/** Rewrites container paths under mount targets to the local directories. */
export function rewritePaths(args: string[], mounts: [target: string, local: string][]): string[] {
  return args.map((arg) => {
    for (const [target, local] of mounts) {
      // A path as the whole argument, or after `=` / `:` (e.g. --image=/images/x, log:/x).
      const re = new RegExp(`(^|[=:])${target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?=/|$)`);
      if (re.test(arg)) return arg.replace(re, `$1${local}`);
    }
    return arg;
  });
}

/**
 * Points a service's `--http [HOST:]PORT` (control endpoint) at a free loopback port, so
 * local runs never collide on the container ports; up prints the URLs.
 */
export function localHttp(args: string[]): string[] {
  const out = [...args];
  for (let i = 0; i < out.length; i++) {
    if (out[i] === "--http" && i + 1 < out.length) out[++i] = "127.0.0.1:0";
    else if (out[i].startsWith("--http=")) out[i] = "--http=127.0.0.1:0";
  }
  return out;
}

/** A started process of the topology. */
interface Running {
  name: string;
  child: Deno.ChildProcess;
  exited: Promise<number>;
  log: string[];
}

const say = (line: string) => console.error(`vmesh up: ${line}`);

/** Pipes a stream to stderr line by line with a `name | ` prefix; calls onLine per line. */
async function prefixLines(
  name: string,
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
  onLine: (line: string) => void,
): Promise<void> {
  const enc = new TextEncoder();
  let rest = "";
  const emit = (line: string) => {
    onLine(line);
    Deno.stderr.writeSync(enc.encode(`${name.padEnd(8)}| ${line}\n`));
  };
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        emit(rest.slice(0, nl).replace(/\r$/, ""));
        rest = rest.slice(nl + 1);
      }
    }
  } catch { /* the process went away */ }
  if (rest) emit(rest);
}

/** The running topology: what was started, in order, and how to stop it. */
class Topology {
  readonly running: Running[] = [];
  stopNats: (() => Promise<void>) | undefined;
  /** Holds the admin login of the private nats-server; removed on stop. */
  runDir: string | undefined;
  /** Removes the login copy of {@link publishUpLogin}. */
  unpublish: (() => Promise<void>) | undefined;
  #stopping?: Promise<void>;

  /** Stops the processes in reverse start order (SIGTERM, SIGKILL after 10 s), then nats. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const r of [...this.running].reverse()) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          r.child.kill("SIGTERM");
        } catch { /* already exited */ }
        const killed = new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            say(`${r.name}: no exit 10 s after SIGTERM, killing`);
            try {
              r.child.kill("SIGKILL");
            } catch { /* exited meanwhile */ }
            resolve();
          }, 10_000);
        });
        await Promise.race([r.exited, killed]);
        await r.exited;
        clearTimeout(timer);
        say(`${r.name}: stopped`);
      }
      await this.unpublish?.();
      await this.stopNats?.();
      if (this.runDir) await Deno.remove(this.runDir, { recursive: true }).catch(() => {});
    })();
    return this.#stopping;
  }
}

/** Runs `vmesh up`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let opts: UpOptions | "help";
  let services: Map<string, ComposeService>;
  let order: string[];
  try {
    opts = parseUpArgs(args);
    if (opts === "help") {
      console.log(USAGE);
      return 0;
    }
    let text: string;
    try {
      text = await Deno.readTextFile(opts.file);
    } catch (e) {
      throw new UpError(`cannot read ${opts.file}: ${(e as Error).message}`);
    }
    services = parseCompose(text);
    if (opts.control) services = withControlPlane(services, `${ROOT}.vmesh/agent`);
    for (const n of [...opts.entries.keys(), ...opts.commands.keys(), ...opts.env.keys()]) {
      if (!services.has(n)) throw new UpError(`no service ${n} in ${opts.file}`);
    }
    if (opts.console !== undefined && !services.has("console")) {
      throw new UpError(`--console: no console service in ${opts.file}`);
    }
    order = startOrder(services, opts.only, opts.skip);
  } catch (e) {
    if (e instanceof UpError) {
      console.error(`vmesh up: ${e.message}`);
      return 2;
    }
    throw e;
  }
  const o = opts;

  const topo = new Topology();
  let interrupted: (why: string) => void = () => {};
  const interrupt = new Promise<string>((resolve) => interrupted = resolve);
  const onSignal = { SIGINT: () => interrupted("SIGINT"), SIGTERM: () => interrupted("SIGTERM") };
  for (const [sig, fn] of Object.entries(onSignal)) {
    Deno.addSignalListener(sig as Deno.Signal, fn);
  }
  const composeDir = new URL(".", `file://${await Deno.realPath(o.file)}`).pathname;
  let code = 0;
  try {
    const volumes = new Map(o.volumes);
    let natsUrl = Deno.env.get("NATS_URL") ?? "";
    const otlp = Deno.env.get("OTEL_EXPORTER_OTLP_ENDPOINT");
    const controls: string[] = [];
    const running = (r: Running) => r.exited.then((c) => ({ name: r.name, code: c }));
    // Each service's bus role, from the service it is built from and its command line.
    const roles = new Map<string, BusRole>();
    for (const name of order) {
      const s = services.get(name)!;
      const built = builtService(s);
      const role = built && serviceRole(built, o.commands.get(name) ?? s.command, s.environment);
      if (role) roles.set(name, role);
    }
    let creds: BusCredentials | undefined;
    let adminLogin = "";
    for (const name of order) {
      const s = services.get(name)!;
      const kind = localKind(s, o.entries.get(name));
      if (kind.kind === "nats") {
        if (natsUrl) say(`${name}: using NATS_URL=${natsUrl}`);
        else {
          // A login per service, allowed only its role's subjects; anonymous clients refused.
          creds = new BusCredentials();
          for (const role of roles.values()) creds.add(role);
          const nats = await startEmbeddedNats({ handleSignals: false, credentials: creds });
          topo.stopNats = () => nats.stop();
          natsUrl = nats.url;
          topo.runDir = await Deno.makeTempDir({ prefix: "vmesh-up-" });
          adminLogin = await writeAdminLogin(`${topo.runDir}/bus.env`, nats);
          // The commands beside it (./vmesh create, ls, ...) find the bus there.
          topo.unpublish = await publishUpLogin(adminLogin);
          say(
            `${name}: embedded nats-server at ${nats.url}, a login per service (pid ${nats.pid})`,
          );
          say(`${name}: admin login for tools in ${adminLogin} (0600; load: set -a; . FILE)`);
        }
        continue;
      }
      if (kind.kind === "jaeger") {
        say(
          otlp
            ? `${name}: skipped; traces go to OTEL_EXPORTER_OTLP_ENDPOINT=${otlp}`
            : `${name}: skipped (no containers here); set OTEL_EXPORTER_OTLP_ENDPOINT to export traces`,
        );
        continue;
      }
      if (kind.kind === "unsupported") {
        say(`${name}: skipped, ${kind.why}`);
        continue;
      }
      if (kind.kind === "guest") {
        const missing = s.volumes.filter((m) => m.named && !volumes.has(m.source));
        if (missing.length === 0) {
          say(`${name}: skipped, images given: ${s.volumes.map((m) => volumes.get(m.source))}`);
          continue;
        }
        say(`${name}: guest images (built once from Debian sources, then cached)`);
        const images = await Promise.race([ensureGuestImages(), interrupt]);
        if (typeof images === "string") throw new UpError(`${images} while building the guest`);
        for (const m of missing) volumes.set(m.source, images.dir);
        say(`${name}: images ${images.key} in ${images.dir}`);
        continue;
      }
      // A device service as a local Deno process.
      const mounts: [string, string][] = [];
      for (const m of s.volumes) {
        let local = m.named ? volumes.get(m.source) : `${composeDir}${m.source}`;
        if (!local) {
          // Named volumes live under .vmesh/volumes/, so they persist across runs as in compose.
          local = `${ROOT}.vmesh/volumes/${m.source}`;
          volumes.set(m.source, local);
        }
        if (m.named) await Deno.mkdir(local, { recursive: true });
        mounts.push([m.target, local.replace(/\/$/, "")]);
      }
      let command = o.commands.get(name) ?? s.command;
      if (name === "console" && o.console !== undefined) {
        command = withConsoleBackend(command, o.console);
      }
      command = localHttp(rewritePaths(command, mounts));
      const env: Record<string, string> = { ...s.environment };
      if (natsUrl) env.NATS_URL = natsUrl;
      // compose's login is for compose's server (its secrets come from .env): use this one's.
      delete env[USER_ENV];
      delete env[PASSWORD_ENV];
      const role = roles.get(name);
      if (creds && role) Object.assign(env, creds.env(role));
      else if (creds) say(`${name}: no bus role for it, so no login: the bus will refuse it`);
      if (otlp) env.OTEL_EXPORTER_OTLP_ENDPOINT = otlp;
      else {
        for (const k of Object.keys(env)) if (k.startsWith("OTEL_")) delete env[k];
      }
      if (env.OTEL_DENO && !env.OTEL_SERVICE_NAME) env.OTEL_SERVICE_NAME = `vmesh-${name}`;
      Object.assign(env, o.env.get(name));
      const interactive = s.interactive && Deno.stdin.isTerminal();
      const entry = kind.entry.startsWith("/") ? kind.entry : `${ROOT}${kind.entry}`;
      // A lifeline (bus/lifeline.ts): the child exits when this process dies, even of SIGKILL.
      const lifeline = lifelineSpawnOptions(interactive ? "inherit" : "null");
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", entry, ...command],
        cwd: ROOT,
        env: { ...env, ...lifeline.env },
        stdin: lifeline.stdin,
        stdout: interactive ? "inherit" : "piped",
        stderr: "piped",
      }).spawn();
      const log: string[] = [];
      let ready: () => void = () => {};
      const isReady = new Promise<void>((r) => ready = r);
      const onLine = (line: string) => {
        log.push(line);
        if (line.includes(" ready: ")) ready();
        // Control endpoints (`<svc> http: URL`) and pages (`<svc> web terminal: URL`).
        const url = / (http|web terminal): (https?:\/\/\S+)/.exec(line);
        if (url) controls.push(`${name} ${url[1] === "http" ? "" : "web terminal "}${url[2]}`);
      };
      const pipes = [prefixLines(name, child.stderr, onLine)];
      if (!interactive) pipes.push(prefixLines(name, child.stdout, () => {}));
      const exited = child.status.then(async (st) => {
        if (lifeline.stdin === "piped") await child.stdin.close().catch(() => {});
        await Promise.all(pipes);
        return st.code;
      });
      const r: Running = { name, child, exited, log };
      topo.running.push(r);
      say(`${name}: started ${kind.entry} ${command.join(" ")} (pid ${child.pid})`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const first = await Promise.race([
        isReady.then(() => "ready"),
        running(r).then((x) => `exited with code ${x.code} before it was ready`),
        interrupt.then((sig) => `${sig} while waiting for it`),
        new Promise<string>((resolve) => {
          timer = setTimeout(
            () => resolve(`not ready after ${o.readyTimeoutMs / 1000} s`),
            o.readyTimeoutMs,
          );
        }),
      ]);
      clearTimeout(timer);
      if (first !== "ready") throw new UpError(`${name}: ${first}`);
    }
    if (controls.length) say(`endpoints: ${controls.join(", ")}`);
    const names = topo.running.map((r) => r.name);
    say(
      `running: ${names.join(", ") || "(no processes)"}; NATS_URL=${natsUrl}; ` +
        `${adminLogin ? `admin login ${adminLogin}; ` : ""}Ctrl-C stops everything`,
    );
    const why = await Promise.race([
      interrupt.then((sig) => ({ sig, name: "", code: 0 })),
      ...topo.running.map((r) => running(r).then((x) => ({ sig: "", ...x }))),
    ]);
    if (why.sig) say(`${why.sig}: stopping`);
    else {
      say(`${why.name} exited with code ${why.code}: stopping the rest`);
      code = why.code === 0 ? 0 : 1;
    }
  } catch (e) {
    say(e instanceof UpError ? e.message : `error: ${(e as Error)?.stack ?? e}`);
    code = 1;
  } finally {
    await topo.stop();
    for (const [sig, fn] of Object.entries(onSignal)) {
      Deno.removeSignalListener(sig as Deno.Signal, fn);
    }
  }
  say("stopped");
  return code;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
