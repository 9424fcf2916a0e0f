/**
 * Connecting to the bus: `$NATS_URL` (or an explicit URL) if given, else a private
 * embedded nats-server shared by every connection of this process.
 *
 * @module
 */
import { connect as natsConnect } from "@nats-io/transport-node";
import { Bus } from "./bus.ts";
import { type Logger, stderrLogger } from "./core.ts";
import {
  BusCredentials,
  credentialsFromEnv,
  inboxPrefix,
  PASSWORD_ENV,
  USER_ENV,
} from "./credentials.ts";
import { logPermissionErrors } from "./permission_log.ts";
import { CA_ENV } from "./tls.ts";
import { type EmbeddedNats, type EmbeddedNatsOptions, startEmbeddedNats } from "./nats_server.ts";

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** NATS URL; default `$NATS_URL`; if neither is set, an embedded server is started. */
  url?: string;
  /** Connection name shown by the server (e.g. "vmesh-disk"). */
  name?: string;
  /** Where bus problems are logged, one line each. Default stderr. */
  log?: Logger;
  /**
   * User and password; default the embedded server's admin user when this process started it,
   * else `$VMESH_NATS_USER` / `$VMESH_NATS_PASSWORD`.
   */
  auth?: { user: string; pass: string };
  /**
   * Verify the server's TLS certificate against this CA (PEM file); default `$VMESH_NATS_CA`,
   * or the embedded server's CA when this process started it with TLS.
   */
  tlsCa?: string;
  /**
   * Options of the embedded server, when one is started. It refuses anonymous clients unless
   * `credentials: undefined` is given explicitly.
   */
  embedded?: EmbeddedNatsOptions;
}

/** Pause between reconnect attempts to a lost server. */
const RECONNECT_WAIT_MS = 500;

let shared: { srv: Promise<EmbeddedNats>; users: number } | undefined;

async function acquireEmbedded(opts?: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  // Secure by default: only this process (its admin login) may connect; children need a login
  // of their own (`bus.embedded.credentials.env(role)`), or pass `credentials: undefined`.
  if (!shared) {
    shared = { srv: startEmbeddedNats({ credentials: new BusCredentials(), ...opts }), users: 0 };
  }
  const s = shared;
  s.users++;
  try {
    return await s.srv;
  } catch (e) {
    if (shared === s) shared = undefined;
    throw e;
  }
}

async function releaseEmbedded(): Promise<void> {
  const s = shared;
  if (!s || --s.users > 0) return;
  shared = undefined;
  await (await s.srv).stop();
}

/**
 * Connects to the bus. Without a URL (argument or `$NATS_URL`) it starts a private
 * nats-server (one per process, shared by all connections, stopped when the last
 * of them closes or the process exits); pass `bus.url` to child processes as
 * `NATS_URL` so they join it.
 *
 * ```ts
 * const bus = await connect({ name: "vmesh-disk" });
 * // ... bus.serve(...) / bus.client(...) ...
 * await bus.close();
 * ```
 */
export async function connect(opts: ConnectOptions = {}): Promise<Bus> {
  const given = opts.url ?? Deno.env.get("NATS_URL");
  const embedded = given ? undefined : await acquireEmbedded(opts.embedded);
  const url = given ?? embedded!.url;
  const admin = embedded?.credentials?.users.get("admin");
  // A server this process started: its own admin login, not one meant for another server.
  const auth = opts.auth ?? (admin ? { user: admin.user, pass: admin.password } : undefined) ??
    credentialsFromEnv();
  try {
    const servers = url.split(",").map((s) => s.trim().replace(/^nats:\/\//, ""));
    // A per-user inbox: the server lets each user read only replies addressed to it.
    const ca = opts.tlsCa ?? Deno.env.get(CA_ENV) ?? embedded?.tls?.ca;
    const nc = await natsConnect({
      servers,
      name: opts.name,
      // nats.js' 20 s of reconnecting (10 x 2 s), tried every 500 ms: a restarted server
      // (a launcher's supervision) is found again within half a second.
      reconnectTimeWait: RECONNECT_WAIT_MS,
      maxReconnectAttempts: 20_000 / RECONNECT_WAIT_MS,
      ...(ca ? { tls: { caFile: ca } } : {}),
      ...(auth ? { user: auth.user, pass: auth.pass, inboxPrefix: inboxPrefix(auth.user) } : {}),
    });
    // The server's refusals reach the client only as status events: log each one.
    const who = `${opts.name ?? "bus client"} (user ${auth?.user ?? "anonymous"})`;
    logPermissionErrors(nc, opts.log ?? stderrLogger, who);
    return new Bus(
      nc,
      url,
      opts.log ?? stderrLogger,
      embedded ? { server: embedded, release: releaseEmbedded } : undefined,
    );
  } catch (e) {
    if (embedded) await releaseEmbedded();
    if (/authorization/i.test(`${(e as Error).message} ${(e as Error).cause ?? ""}`)) {
      throw new Error(
        `the bus at ${url} refused ${auth ? `the login ${auth.user}` : "an anonymous client"}: ` +
          `set ${USER_ENV} and ${PASSWORD_ENV} (./vmesh boot and ./vmesh up write the admin ` +
          `login to the bus.env they name; load it with: set -a; . FILE)`,
        { cause: e },
      );
    }
    throw e;
  }
}
