/**
 * The CPU service's REST API, a hono sub-app to mount at `/vm` on the control endpoint
 * (`controlApp({ routes: [{ path: "/vm", app: vmControlApi(vm) }] })`):
 *
 * - `GET /vm` — state, pc, instructions retired, MIPS, devices (JSON)
 * - `POST /vm/pause`, `POST /vm/resume`, `POST /vm/stop` — the new status, or 409 when
 *   the VM is in a state that does not allow it (e.g. resume a stopped VM)
 * - `POST /vm/snapshot` (optional JSON body `{"name": "..."}`) — stores the VM in the memory
 *   service (`vmesh.<vm>.ctl.snapshot`); what was stored, 409 when not running or the name
 *   is taken, 400 for a bad name, 502 when the memory service fails
 * - `POST /vm/migrate` (JSON body `{"to": HOST, "maxDowntimeMs"?, "maxRounds"?, "verify"?}`) —
 *   live-migrates the VM to the CPU service waiting with `--incoming --host HOST`
 *   (`vmesh.<vm>.ctl.migrate`); rounds, pages, bytes, downtime and total time, 409 when refused
 *   or failed (the VM then runs on here), 400 for a bad body
 *
 * @module
 */
import { Hono } from "hono";
import { type Bus, BusError, HttpError, Status, vm as vmContract } from "@vmesh/bus";
import type { MigrateResult } from "./migration/mod.ts";
import type { SnapshotResult } from "./snapshot/mod.ts";

/** What the API needs from the running VM (the CPU service's VmService provides it). */
export interface VmControl {
  /** The control contract's status: state, pc, instret, devices. */
  status(): vmContract.VmStatus;
  pause(): void | Promise<void>;
  resume(): void | Promise<void>;
  stop(): void | Promise<void>;
  /** Stores the VM in the memory service under `name` (empty: a default name). */
  snapshot?(name: string): Promise<vmContract.SnapshotReply>;
  /** Live-migrates the VM (see services/cpu/migration/). */
  migrate?(req: vmContract.MigrateRequest): Promise<vmContract.MigrateReply>;
}

/**
 * A {@link VmControl} that pauses, resumes and stops through the VM's own control
 * contract (`vmesh.<vm>.ctl.<op>` on the bus), so HTTP and bus callers take one path.
 */
export function vmControlOverBus(
  bus: Bus,
  vm: string,
  status: () => vmContract.VmStatus,
): VmControl {
  const call = async (op: "pause" | "resume" | "stop") => {
    await bus.request({ vm, device: "ctl" }, vmContract.ops[op], {}, { timeoutMs: 5000 });
  };
  return {
    status,
    pause: () => call("pause"),
    resume: () => call("resume"),
    stop: () => call("stop"),
    snapshot: (name) =>
      bus.request({ vm, device: "ctl" }, vmContract.ops.snapshot, { name }, {
        timeoutMs: 600_000,
        retries: 0,
      }),
    migrate: (req) =>
      bus.request({ vm, device: "ctl" }, vmContract.ops.migrate, req, {
        timeoutMs: 600_000,
        retries: 0,
      }),
  };
}

/** The JSON of `POST /vm/migrate`: the migration's figures, as `migrateOut` reports them. */
export type MigrateJson = MigrateResult;

/** The JSON of `POST /vm/snapshot`: what was stored, as `takeSnapshot` reports it. */
export type SnapshotJson = SnapshotResult;

/** The JSON of `GET /vm`. */
export interface VmStatusJson {
  vm: string;
  /** State name: CREATED, RUNNING, PAUSED, STOPPED, FAILED. */
  state: string;
  /** Program counter as 0x-prefixed 16-digit hex (full 64 bits). */
  pc: string;
  /** Instructions retired so far (decimal string: 64-bit). */
  instret: string;
  /** Millions of instructions per second since the previous sample (≥ 0.5 s before). */
  mips: number;
  /** Millions of instructions per second since the first sample. */
  mipsAverage: number;
  devices: vmContract.DeviceStatus[];
}

const STATE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(vmContract.State).map(([k, v]) => [v, k]),
);

/** A state number as its name ("UNKNOWN(n)" for a number the contract lacks). */
export function stateName(state: number): string {
  return STATE_NAMES[state] ?? `UNKNOWN(${state})`;
}

interface Sample {
  t: number;
  instret: bigint;
}

/** The `/vm` sub-app for VM `name`. */
export function vmControlApi(name: string, vm: VmControl, now = () => performance.now()): Hono {
  let first: Sample | undefined;
  let prev: Sample | undefined;
  let mips = 0;
  const rate = (a: Sample, b: Sample) =>
    b.t > a.t ? Number(b.instret - a.instret) / ((b.t - a.t) * 1000) : 0;
  const view = (): VmStatusJson => {
    const s = vm.status();
    const sample = { t: now(), instret: BigInt(s.instret) };
    first ??= sample;
    if (!prev) prev = sample;
    else if (sample.t - prev.t >= 500) {
      mips = rate(prev, sample);
      prev = sample;
    }
    const pc = BigInt.asUintN(64, BigInt(s.pc));
    return {
      vm: name,
      state: stateName(s.state),
      pc: `0x${pc.toString(16).padStart(16, "0")}`,
      instret: sample.instret.toString(),
      mips: round(mips),
      mipsAverage: round(rate(first, sample)),
      devices: s.devices,
    };
  };
  const S = vmContract.State;
  const action = (
    op: "pause" | "resume" | "stop",
    allowed: number[],
    already: number[],
  ) =>
  async () => {
    const state = vm.status().state;
    if (!already.includes(state)) {
      if (!allowed.includes(state)) {
        throw new HttpError(409, `cannot ${op} a VM that is ${stateName(state)}`);
      }
      await vm[op]();
    }
    return Response.json(view());
  };
  const app = new Hono();
  app.get("/", () => Response.json(view()));
  app.post("/pause", action("pause", [S.RUNNING], [S.PAUSED]));
  app.post("/resume", action("resume", [S.PAUSED], [S.RUNNING]));
  app.post("/stop", action("stop", [S.CREATED, S.RUNNING, S.PAUSED], [S.STOPPED, S.FAILED]));
  app.post("/snapshot", async (c) => {
    if (!vm.snapshot) throw new HttpError(501, "this VM does not take snapshots");
    const text = await c.req.text();
    let name = "";
    if (text.trim() !== "") {
      const body = (() => {
        try {
          return JSON.parse(text);
        } catch {
          throw new HttpError(400, 'the body must be JSON: {"name": "..."}');
        }
      })();
      if (body?.name !== undefined && typeof body.name !== "string") {
        throw new HttpError(400, "name must be a string");
      }
      name = body?.name ?? "";
    }
    try {
      const r = await vm.snapshot(name);
      const json: SnapshotJson = {
        name: r.name,
        pages: r.pages,
        zeroPages: r.zeroPages,
        distinctPages: r.distinctPages,
        sentPages: r.sentPages,
        sentBytes: Number(r.sentBytes),
        pausedMs: round(r.pausedMs),
        totalMs: round(r.totalMs),
      };
      return Response.json(json);
    } catch (e) {
      throw httpErrorOf(e);
    }
  });
  app.post("/migrate", async (c) => {
    if (!vm.migrate) throw new HttpError(501, "this VM does not migrate");
    const body = await (async () => {
      try {
        return JSON.parse(await c.req.text());
      } catch {
        throw new HttpError(400, 'the body must be JSON: {"to": "HOST"}');
      }
    })();
    if (typeof body?.to !== "string" || body.to === "") {
      throw new HttpError(400, "to must name the target's host");
    }
    for (const k of ["maxDowntimeMs", "maxRounds"]) {
      if (body[k] !== undefined && !(typeof body[k] === "number" && body[k] > 0)) {
        throw new HttpError(400, `${k} must be a positive number`);
      }
    }
    try {
      const r = await vm.migrate({
        to: body.to,
        maxDowntimeMs: body.maxDowntimeMs ?? 0,
        maxRounds: body.maxRounds ?? 0,
        verify: body.verify === true,
      });
      const json: MigrateJson = {
        host: r.host,
        rounds: r.rounds,
        roundPages: r.roundPages,
        sentPages: r.sentPages,
        sentBytes: Number(r.sentBytes),
        finalPages: r.finalPages,
        downtimeMs: round(r.downtimeMs),
        resumeMs: round(r.resumeMs),
        captureMs: round(r.captureMs),
        targetLoadMs: round(r.targetLoadMs),
        totalMs: round(r.totalMs),
      };
      return Response.json(json);
    } catch (e) {
      throw httpErrorOf(e);
    }
  });
  for (const p of ["/pause", "/resume", "/stop", "/snapshot", "/migrate"]) {
    app.all(p, () => {
      throw new HttpError(405, `method not allowed: POST ${p.slice(1)}`);
    });
  }
  return app;
}

/** A refusal as 409, a bad argument as 400, other bus failures as 502. */
function httpErrorOf(e: unknown): unknown {
  if (!(e instanceof BusError)) return e;
  const status = e.code === Status.FAILED_PRECONDITION
    ? 409
    : e.code === Status.INVALID_ARGUMENT
    ? 400
    : 502;
  return new HttpError(status, e.message);
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
