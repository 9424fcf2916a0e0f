/**
 * The control HTTP endpoint every service can open: `GET /healthz` (JSON, 200 when
 * healthy, 503 when not) and `GET /metrics` (Prometheus text format 0.0.4), plus
 * service-specific routes (e.g. the CPU service's `/vm` API). Unknown routes, wrong
 * methods and failing handlers get a JSON error with a 4xx/5xx status, never a crash.
 *
 * ```ts
 * const app = controlApp({ service: "vmesh-disk", health: () => ({ ok: true, detail: "serving" }) });
 * const http = serveControlHttp(app, { port: 0 });
 * console.error(`http on ${http.url}`);
 * await http.close();
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import {
  collectProcessMetrics,
  defaultRegistry,
  EXPOSITION_CONTENT_TYPE,
  type Registry,
} from "./metrics.ts";

/** A service's answer to "are you well?". */
export interface Health {
  ok: boolean;
  /** One line on the state, e.g. "serving vmesh.vm1.disk0" or "nats disconnected". */
  detail?: string;
}

/** The part of a NATS connection {@link busHealth} looks at. */
export interface HealthSource {
  isClosed(): boolean;
  isDraining(): boolean;
}

/** A health check that is ok while the bus connection is open and not draining. */
export function busHealth(nc: HealthSource, what: string): () => Health {
  return () => {
    if (nc.isClosed()) return { ok: false, detail: `${what}: bus connection closed` };
    if (nc.isDraining()) return { ok: false, detail: `${what}: draining` };
    return { ok: true, detail: `${what}: serving` };
  };
}

/** Extra routes mounted under a path prefix, e.g. `{ path: "/vm", app: vmControlApi(vm) }`. */
export interface MountedRoutes {
  path: string;
  app: Hono;
}

/** Options of {@link controlApp}. */
export interface ControlAppOptions {
  /** Service name, reported by /healthz. */
  service: string;
  /** Metrics to expose; default the process-wide registry (with process gauges). */
  registry?: Registry;
  /** Health check; a throw or rejection counts as unhealthy. Default: always healthy. */
  health?: () => Health | Promise<Health>;
  /** Service-specific routes. */
  routes?: MountedRoutes[];
}

/** The JSON body of every error answer. */
export interface HttpErrorBody {
  error: string;
  status: number;
}

function jsonError(status: number, error: string): Response {
  const body: HttpErrorBody = { error, status };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The hono app of a service's control endpoint; see the module doc. */
export function controlApp(opts: ControlAppOptions): Hono {
  const registry = opts.registry ?? defaultRegistry;
  collectProcessMetrics(registry);
  const app = new Hono();
  app.get("/healthz", async (c) => {
    let h: Health;
    try {
      h = await (opts.health?.() ?? { ok: true });
    } catch (e) {
      h = { ok: false, detail: `health check failed: ${(e as Error)?.message ?? e}` };
    }
    const body = { service: opts.service, ok: h.ok === true, detail: h.detail ?? "" };
    return c.json(body, h.ok === true ? 200 : 503);
  });
  app.get("/metrics", () => {
    return new Response(registry.expose(), {
      headers: { "content-type": EXPOSITION_CONTENT_TYPE },
    });
  });
  app.all("/healthz", () => jsonError(405, "method not allowed: use GET"));
  app.all("/metrics", () => jsonError(405, "method not allowed: use GET"));
  for (const r of opts.routes ?? []) app.route(r.path, r.app);
  app.notFound((c) => jsonError(404, `no route ${c.req.method} ${new URL(c.req.url).pathname}`));
  app.onError((err) => {
    // Handlers signal bad input with an HttpError; anything else is a 500, not a crash.
    if (err instanceof HttpError) return jsonError(err.status, err.message);
    return jsonError(500, `internal error: ${err.message}`);
  });
  return app;
}

/** Thrown by route handlers to answer with a JSON error and this status. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** A listening control endpoint. */
export interface ControlHttp {
  /** The bound port (the ephemeral one when asked for port 0). */
  readonly port: number;
  readonly hostname: string;
  /** `http://host:port`. */
  readonly url: string;
  /** Stops listening and waits for in-flight requests. */
  close(): Promise<void>;
}

/** Where {@link serveControlHttp} listens. */
export interface ListenOptions {
  /** Port; 0 picks a free one. */
  port: number;
  /** Default 127.0.0.1 (use 0.0.0.0 in containers). */
  hostname?: string;
}

/**
 * Serves `app` with `Deno.serve`. Throws one clear error when the port cannot be
 * bound (e.g. in use).
 */
export function serveControlHttp(app: Hono, opts: ListenOptions): ControlHttp {
  const hostname = opts.hostname ?? "127.0.0.1";
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new RangeError(`bad control HTTP port ${opts.port}`);
  }
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      port: opts.port,
      hostname,
      onListen: () => {},
      onError: (e) => jsonError(500, `internal error: ${(e as Error)?.message ?? e}`),
    }, app.fetch);
  } catch (e) {
    throw new Error(`cannot listen on ${hostname}:${opts.port}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  const port = server.addr.port;
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  return {
    port,
    hostname,
    url: `http://${host}:${port}`,
    async close() {
      // Graceful: requests in flight (e.g. the POST that stopped the VM) get their answer.
      await server.shutdown();
      await server.finished;
    },
  };
}

/**
 * Reads a `--http [HOST:]PORT` value: undefined, "" or "off" = no endpoint; a port
 * 0..65535 (0 = any free one) on 127.0.0.1, or on HOST when given. Throws a
 * RangeError naming the flag.
 */
export function parseHttpListen(value: string | undefined): ListenOptions | undefined {
  if (value === undefined || value === "" || value === "off") return undefined;
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) {
    throw new RangeError(`--http must be [HOST:]PORT with PORT 0..65535 (0 = any free): ${value}`);
  }
  const host = m[1]?.replace(/^\[(.*)\]$/, "$1");
  return host ? { hostname: host, port: Number(m[2]) } : { port: Number(m[2]) };
}

/**
 * What a service's main.ts calls for its `--http` flag: parses the value, serves the
 * control app and logs `<service> http: <url>` (one line); returns undefined when off.
 * A bad value or a port in use throws with one clear message.
 */
export function startControlHttp(
  flag: string | undefined,
  opts: ControlAppOptions & { log?: (line: string) => void },
): ControlHttp | undefined {
  const listen = parseHttpListen(flag);
  if (!listen) return undefined;
  const http = serveControlHttp(controlApp(opts), listen);
  (opts.log ?? ((l: string) => console.error(l)))(`${opts.service} http: ${http.url}`);
  return http;
}
