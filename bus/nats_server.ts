/**
 * The embedded default: a private `nats-server` (with JetStream) on a free loopback
 * port and a temp store dir, stopped and deleted on close, on normal exit, on
 * SIGINT/SIGTERM and on an uncaught error. Started through `setpriv --pdeathsig TERM`
 * (lifeline.ts), it also stops when its owner dies of SIGKILL; the store dir it leaves then
 * is removed by the next start (owned_temp_dir.ts).
 *
 * @module
 */

import { findInPath, withParentDeathSignal } from "./lifeline.ts";
import { makeOwnedTempDir } from "./owned_temp_dir.ts";
import { processGone } from "./process_gone.ts";
import type { BusCredentials } from "./credentials.ts";

export { processGone };

/** A running private nats-server. */
export interface EmbeddedNats {
  /** `nats://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Process id of nats-server. */
  readonly pid: number;
  /** JetStream store dir (deleted on stop). */
  readonly storeDir: string;
  /** The users it admits (credentials.ts), when started with them; else anyone may connect. */
  readonly credentials?: BusCredentials;
  /** Its TLS files, when started with them (clients must use TLS). */
  readonly tls?: { cert: string; key: string; ca?: string };
  /** Resolves when the process is gone (stopped, or died: a supervisor can start another). */
  readonly exited: Promise<Deno.CommandStatus>;
  /** Stops the server and deletes its store. Idempotent. */
  stop(): Promise<void>;
}

/** Options of {@link startEmbeddedNats}. */
export interface EmbeddedNatsOptions {
  /** Enable JetStream (`-js`). Default true. */
  jetstream?: boolean;
  /** Path of the nats-server binary. Default `$NATS_SERVER_BIN` or `nats-server`. */
  binary?: string;
  /** Loopback port to listen on (a restarted server keeps its clients' URL). Default: a free one. */
  port?: number;
  /** How long to wait for the server to accept connections. Default 15000 ms. */
  startTimeoutMs?: number;
  /**
   * Stop the server and exit (130/143) on SIGINT/SIGTERM. Default true. Set false if
   * the program has its own signal handling: it must then call stop() or Deno.exit()
   * (the exit hook still stops the server).
   */
  handleSignals?: boolean;
  /**
   * The users the server admits (written to a 0600 config in the owned temp dir, plus an
   * `admin` user); anonymous clients are then refused. Without: no authorization.
   */
  credentials?: BusCredentials;
  /**
   * Server certificate and key (tls.ts): the server then requires TLS of every client, which
   * must verify it against the CA (`connect()` reads `$VMESH_NATS_CA`).
   */
  tls?: { cert: string; key: string; ca?: string };
}

interface Running {
  child: Deno.ChildProcess;
  pid: number;
  dir: string;
  stopped: boolean;
}

const running = new Set<Running>();
let hooksInstalled = false;
let signalsInstalled = false;

/** Starts a private nats-server and waits until it accepts connections. */
export async function startEmbeddedNats(opts: EmbeddedNatsOptions = {}): Promise<EmbeddedNats> {
  const binary = opts.binary ?? Deno.env.get("NATS_SERVER_BIN") ?? "nats-server";
  // Owned: the next start removes the dirs a SIGKILLed owner left behind.
  const dir = await makeOwnedTempDir("vmesh-nats-");
  const port = opts.port ?? freePort();
  const credentials = opts.credentials;
  const args = ["-a", "127.0.0.1", "-p", String(port), "-l", `${dir}/nats.log`];
  if (credentials) {
    credentials.add({ kind: "admin" });
    // The passwords live only in this 0600 file of the owned dir, never on argv.
    await Deno.writeTextFile(`${dir}/nats.conf`, credentials.serverConfig(), { mode: 0o600 });
    args.unshift("-c", `${dir}/nats.conf`);
  }
  if (opts.tls) args.push("--tls", "--tlscert", opts.tls.cert, "--tlskey", opts.tls.key);
  if (opts.jetstream ?? true) args.push("-js", "-sd", `${dir}/store`);
  let child: Deno.ChildProcess;
  try {
    // setpriv would start and then fail to exec it: say what is missing here instead.
    if (!findInPath(binary)) throw new Deno.errors.NotFound(`${binary} not found in PATH`);
    const [cmd, cmdArgs] = withParentDeathSignal(binary, args);
    child = new Deno.Command(cmd, {
      args: cmdArgs,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw new Error(`cannot start ${binary}: ${(e as Error).message}`, { cause: e });
  }
  // The process must not keep the Deno event loop alive; exit hooks stop it.
  child.unref();
  const r: Running = { child, pid: child.pid, dir, stopped: false };
  running.add(r);
  installHooks(opts.handleSignals ?? true);
  const stop = () => stopRunning(r);
  try {
    await waitUntilListening(r, port, opts.startTimeoutMs ?? 15_000);
  } catch (e) {
    const log = await Deno.readTextFile(`${dir}/nats.log`).catch(() => "");
    await stop();
    const tail = log.trim().split("\n").slice(-3).join(" | ");
    throw new Error(`nats-server did not start: ${(e as Error).message}${tail ? `: ${tail}` : ""}`);
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    pid: r.pid,
    storeDir: dir,
    credentials,
    tls: opts.tls,
    exited: child.status,
    stop,
  };
}

/** A NATS URL to use and how to release it. */
export interface NatsHandle {
  readonly url: string;
  /** The private server, when one was started. */
  readonly embedded?: EmbeddedNats;
  /** Stops the private server, if one was started; otherwise does nothing. */
  stop(): Promise<void>;
}

/**
 * A NATS URL: `$NATS_URL` if set, else a private server. With `fn`, runs it with
 * the URL and stops the private server when it settles; without, returns a handle.
 *
 * ```ts
 * const nats = await withNats();            // { url, stop }
 * await withNats(async (url) => { ... });   // stopped afterwards
 * ```
 */
export function withNats(opts?: EmbeddedNatsOptions): Promise<NatsHandle>;
export function withNats<T>(
  fn: (url: string) => Promise<T>,
  opts?: EmbeddedNatsOptions,
): Promise<T>;
export async function withNats<T>(
  fnOrOpts?: ((url: string) => Promise<T>) | EmbeddedNatsOptions,
  maybeOpts?: EmbeddedNatsOptions,
): Promise<T | NatsHandle> {
  const fn = typeof fnOrOpts === "function" ? fnOrOpts : undefined;
  const opts = (typeof fnOrOpts === "function" ? maybeOpts : fnOrOpts) ?? {};
  const given = Deno.env.get("NATS_URL");
  const handle: NatsHandle = given
    ? { url: given, stop: () => Promise.resolve() }
    : await startEmbeddedNats(opts).then((srv) => ({
      url: srv.url,
      embedded: srv,
      stop: srv.stop,
    }));
  if (!fn) return handle;
  try {
    return await fn(handle.url);
  } finally {
    await handle.stop();
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitUntilListening(r: Running, port: number, timeoutMs: number) {
  let exited = false;
  r.child.status.then(() => exited = true, () => exited = true);
  const until = Date.now() + timeoutMs;
  while (true) {
    if (exited) throw new Error("nats-server exited");
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      if (Date.now() > until) throw new Error(`no listener on port ${port} after ${timeoutMs} ms`);
      // It listens about 10 ms after its start here: a short poll, as boot waits on it.
      await new Promise((res) => setTimeout(res, 4));
    }
  }
}

async function stopRunning(r: Running): Promise<void> {
  if (r.stopped) return;
  r.stopped = true;
  running.delete(r);
  try {
    r.child.kill("SIGTERM");
  } catch { /* already gone */ }
  const killer = setTimeout(() => {
    try {
      r.child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, 5000);
  await r.child.status.catch(() => {});
  clearTimeout(killer);
  await Deno.remove(r.dir, { recursive: true }).catch(() => {});
  if (running.size === 0) removeHooks();
}

// Exit paths that cannot await: signal the server, wait briefly, delete the store.
function stopAllSync() {
  for (const r of [...running]) {
    r.stopped = true;
    running.delete(r);
    try {
      r.child.kill("SIGTERM");
    } catch { /* already gone */ }
    if (!waitGoneSync(r.pid, 3000)) {
      try {
        r.child.kill("SIGKILL");
      } catch { /* already gone */ }
      waitGoneSync(r.pid, 1000);
    }
    try {
      Deno.removeSync(r.dir, { recursive: true });
    } catch { /* best effort */ }
  }
}

function waitGoneSync(pid: number, ms: number): boolean {
  const until = Date.now() + ms;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (!processGone(pid)) {
    if (Date.now() > until) return false;
    Atomics.wait(cell, 0, 0, 5);
  }
  return true;
}

const onUnload = () => stopAllSync();
// Only when nobody handled the error, i.e. the process is about to die of it.
const onError = (ev: Event) => {
  if (!ev.defaultPrevented) stopAllSync();
};
const onSigint = () => {
  stopAllSync();
  Deno.exit(130);
};
const onSigterm = () => {
  stopAllSync();
  Deno.exit(143);
};

function installHooks(signals: boolean) {
  if (!hooksInstalled) {
    hooksInstalled = true;
    globalThis.addEventListener("unload", onUnload);
    globalThis.addEventListener("error", onError);
    globalThis.addEventListener("unhandledrejection", onError);
  }
  if (signals && !signalsInstalled) {
    signalsInstalled = true;
    Deno.addSignalListener("SIGINT", onSigint);
    Deno.addSignalListener("SIGTERM", onSigterm);
  }
}

function removeHooks() {
  if (!hooksInstalled) return;
  hooksInstalled = false;
  globalThis.removeEventListener("unload", onUnload);
  globalThis.removeEventListener("error", onError);
  globalThis.removeEventListener("unhandledrejection", onError);
  if (signalsInstalled) {
    signalsInstalled = false;
    Deno.removeSignalListener("SIGINT", onSigint);
    Deno.removeSignalListener("SIGTERM", onSigterm);
  }
}
