/**
 * The CPU service's REST API, a hono sub-app to mount at `/vm` on the control endpoint
 * (`controlApp({ routes: [{ path: "/vm", app: vmControlApi(vm) }] })`):
 *
 * - `GET /vm` — state, pc, instructions retired, MIPS, devices (JSON)
 * - `POST /vm/pause`, `POST /vm/resume`, `POST /vm/stop` — the new status, or 409 when
 *   the VM is in a state that does not allow it (e.g. resume a stopped VM)
 *
 * @module
 */
import { Hono } from "hono";
import { type Bus, HttpError, vm as vmContract } from "@vmesh/bus";

/** What the API needs from the running VM (the CPU service's VmService provides it). */
export interface VmControl {
  /** The control contract's status: state, pc, instret, devices. */
  status(): vmContract.VmStatus;
  pause(): void | Promise<void>;
  resume(): void | Promise<void>;
  stop(): void | Promise<void>;
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
  };
}

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
  for (const p of ["/pause", "/resume", "/stop"]) {
    app.all(p, () => {
      throw new HttpError(405, `method not allowed: POST ${p.slice(1)}`);
    });
  }
  return app;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
