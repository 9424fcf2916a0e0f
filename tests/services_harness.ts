/**
 * Test harness for the device services: a real nats-server and the real service
 * processes, spawned with this Deno, waited on until they say they are ready.
 * @module
 */

import type { ServiceInfo } from "@nats-io/services";
import { type Bus, connect, type EmbeddedNats, startEmbeddedNats } from "@vmesh/bus";
import type { Msg, MsgHdrs } from "@nats-io/transport-node";
import { common, ERROR_HEADER } from "@vmesh/bus";

/** A running service process. */
export interface ServiceProcess {
  readonly child: Deno.ChildProcess;
  /** Every stderr line so far. */
  readonly log: string[];
  /** The ready line the service printed. */
  readonly ready: string;
  /** Resolves with the exit code when the process has exited. */
  readonly exited: Promise<number>;
  /** Sends `signal` and waits for the exit; resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
}

const ROOT = new URL("../", import.meta.url);

/** Path of a service entry point, e.g. `servicePath("disk")`. */
export function servicePath(name: string): string {
  return new URL(`services/${name}/main.ts`, ROOT).pathname;
}

/**
 * Calls `onLine` with each complete line of `stream` (text, without the newline) until it
 * ends; resolves with the unterminated rest ("" when the text ended with a newline).
 */
export async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      onLine(line);
    }
  }
  return rest;
}

/**
 * Spawns `services/<name>/main.ts args` with NATS_URL set and resolves once it prints a
 * line containing ` ready: `; rejects with its log if it exits first.
 */
export async function startService(
  name: string,
  args: string[],
  natsUrl: string,
  extra: { stdin?: "piped" | "null"; cwd?: string; env?: Record<string, string> } = {},
): Promise<ServiceProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", servicePath(name), ...args],
    env: { NATS_URL: natsUrl, NO_COLOR: "1", ...extra.env },
    stdin: extra.stdin ?? "null",
    stdout: "null",
    stderr: "piped",
    cwd: extra.cwd,
  }).spawn();
  const log: string[] = [];
  let onReady: (line: string) => void = () => {};
  const readyLine = new Promise<string>((resolve) => onReady = resolve);
  const reader = readLines(child.stderr, (line) => {
    log.push(line);
    if (line.includes(" ready: ")) onReady(line);
  }).then((rest) => {
    if (rest) log.push(rest);
  });
  const exited = child.status.then(async (s) => {
    await reader;
    return s.code;
  });
  const first = await Promise.race([readyLine, exited.then((code) => ({ code }))]);
  if (typeof first !== "string") {
    throw new Error(`${name} exited with ${first.code} before ready:\n${log.join("\n")}`);
  }
  let stopped: Promise<number> | undefined;
  return {
    child,
    log,
    ready: first,
    exited,
    stop(signal: Deno.Signal = "SIGTERM") {
      if (!stopped) {
        try {
          child.kill(signal);
        } catch { /* already exited */ }
        stopped = exited;
      }
      return stopped;
    },
  };
}

/**
 * Polls `fn` every 100 ms until it gives a value other than undefined; rejects naming `what`
 * after `ms`.
 * @example
 * ```ts
 * const hosts = await waitFor("a host up", async () => {
 *   const { hosts } = await ctl.call("hosts", {});
 *   return hosts.length ? hosts : undefined;
 * });
 * ```
 */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined>,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A nats-server with JetStream plus a bus connection to it, for one test file. */
export interface TestBus {
  readonly nats: EmbeddedNats;
  readonly bus: Bus;
  close(): Promise<void>;
}

/** Starts a private nats-server and connects to it. */
export async function startTestBus(): Promise<TestBus> {
  const nats = await startEmbeddedNats();
  const bus = await connect({ url: nats.url, name: "vmesh-test", log: () => {} });
  return {
    nats,
    bus,
    async close() {
      await bus.close();
      await nats.stop();
    },
  };
}

/** A decoded error reply: its `vmesh-error` header and `vmesh.common.Error` payload. */
export interface ErrorReply {
  header: string;
  code: number;
  message: string;
}

/** Sends raw bytes as a request and decodes the error reply (throws if it is not one). */
export async function rawErrorRequest(
  bus: Bus,
  subject: string,
  data: Uint8Array,
  headers?: MsgHdrs,
): Promise<ErrorReply> {
  const msg: Msg = await bus.nc.request(subject, data, { timeout: 10_000, headers });
  const header = msg.headers?.get(ERROR_HEADER) ?? "";
  if (!header) throw new Error(`${subject}: expected an error reply, got ${msg.data.length} bytes`);
  const e = common.errorCodec.decode(msg.data);
  return { header, code: e.code, message: e.message };
}

/** Bytes that are not a valid protobuf encoding of any message (truncated varint tag). */
export const MALFORMED = new Uint8Array([0xff, 0xff, 0xff, 0xff]);

/**
 * `$SRV.INFO` answers of service `name`: waits for `expected` answers (up to 10 s), so a
 * slow machine does not make the listing short.
 */
export async function discover(bus: Bus, name: string, expected: number): Promise<ServiceInfo[]> {
  const out: ServiceInfo[] = [];
  const replies = await bus.nc.requestMany(`$SRV.INFO.${name}`, new Uint8Array(), {
    strategy: "count",
    maxMessages: expected,
    maxWait: 10_000,
  });
  for await (const msg of replies) out.push(msg.json<ServiceInfo>());
  return out;
}
