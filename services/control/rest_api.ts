/**
 * The control service's REST API, a hono sub-app mounted at `/api` on its HTTP endpoint
 * (bus/control_http.ts): the same methods as the bus ops, JSON in and out.
 *
 * - `GET /api/vms[?label=k=v]` — VmList; `POST /api/vms` (a `control.CreateVm` as JSON) — the
 *   new VmInfo, 201
 * - `POST /api/snapshots/:snap/clone` (a `control.CloneVms` as JSON, without the snapshot) — the
 *   clones' VmList, 201; `POST /api/vms/:name/snapshot` (optional `{snapshot, diskLayers}`) —
 *   SnapshotInfo, 201
 * - `GET /api/vms/:name`, `POST /api/vms/:name/stop`, `POST /api/vms/:name/start`,
 *   `DELETE /api/vms/:name[?force=1]` — VmInfo
 * - `GET /api/vms/:name/logs` — the console output (text/plain)
 * - `GET /api/vms/:name/events`, `GET /api/events` — the events stream's last entries
 * - `GET /api/hosts` — HostList
 *
 * Errors are `{error, status}`: 400 bad input, 404 no such VM, 409 refused (no host fits,
 * name taken, state), 503 host not announcing.
 * @module
 */

import { Hono } from "hono";
import { BusError, type control, HttpError, Status } from "@vmesh/bus";
import type { ControlService } from "./control_service.ts";

const HTTP_STATUS: Record<number, number> = {
  [Status.INVALID_ARGUMENT]: 400,
  [Status.MALFORMED]: 400,
  [Status.NOT_FOUND]: 404,
  [Status.FAILED_PRECONDITION]: 409,
  [Status.UNAVAILABLE]: 503,
  [Status.DEADLINE_EXCEEDED]: 504,
};

/** The request's JSON object body (`what` names it in the 400); empty is `{}` when `optional`. */
async function jsonBody(
  req: Request,
  what: string,
  optional: boolean,
): Promise<Record<string, unknown>> {
  const text = await req.text();
  if (!text.trim() && optional) return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, `the body must be a JSON ${what}`);
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new HttpError(400, "the body must be an object");
  }
  return body as Record<string, unknown>;
}

/** Runs an op; a BusError becomes an {@link HttpError} with the matching status. */
async function op<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BusError) throw new HttpError(HTTP_STATUS[e.code] ?? 500, e.message);
    throw e;
  }
}

/**
 * The `/api` sub-app of a control service.
 *
 * @example
 * ```ts
 * const app = controlApp({ service: "vmesh-control", routes: [{ path: "/api", app: controlRestApi(ctl) }] });
 * ```
 */
export function controlRestApi(ctl: ControlService): Hono {
  const app = new Hono();
  app.get("/vms", (c) => {
    const labels: Record<string, string> = {};
    for (const l of c.req.queries("label") ?? []) {
      const i = l.indexOf("=");
      if (i <= 0) throw new HttpError(400, `label filter must be KEY=VALUE, got ${l}`);
      labels[l.slice(0, i)] = l.slice(i + 1);
    }
    return c.json(ctl.list(labels));
  });
  app.post("/vms", async (c) => {
    const body = await jsonBody(c.req.raw, "control.CreateVm", false);
    return c.json(await op(() => ctl.create(body as never)), 201);
  });
  app.post("/snapshots/:snap/clone", async (c) => {
    const body = await jsonBody(c.req.raw, "control.CloneVms", false);
    const req = { ...body, snapshot: c.req.param("snap") } as control.CloneVms;
    return c.json(await op(() => ctl.clone(req)), 201);
  });
  app.post("/vms/:name/snapshot", async (c) => {
    const body = await jsonBody(c.req.raw, "{snapshot, diskLayers}", true);
    const req = { ...body, name: c.req.param("name") } as control.SnapshotVm;
    return c.json(await op(() => ctl.snapshot(req)), 201);
  });
  app.get("/vms/:name", async (c) => c.json(await op(() => ctl.inspect(c.req.param("name")))));
  app.post("/vms/:name/stop", async (c) => c.json(await op(() => ctl.stop(c.req.param("name")))));
  app.post(
    "/vms/:name/start",
    async (c) => c.json(await op(() => ctl.startVm(c.req.param("name")))),
  );
  app.delete("/vms/:name", async (c) => {
    const force = ["1", "true"].includes(c.req.query("force") ?? "");
    return c.json(await op(() => ctl.rm(c.req.param("name"), force)));
  });
  app.get("/vms/:name/logs", async (c) => {
    const { text } = await op(() => ctl.logs(c.req.param("name")));
    return c.text(text);
  });
  app.get("/vms/:name/events", async (c) => c.json(await ctl.events(c.req.param("name"))));
  app.get("/events", async (c) => c.json(await ctl.events()));
  app.get("/hosts", async (c) => c.json(await ctl.hostList()));
  return app;
}
