/**
 * The GDB stub attached to a machine that is built elsewhere (the CPU service on the bus):
 * `MachineOptions.debug` must exist before the machine does, and the stub needs the machine's
 * harts, so the hook forwards to a stub made once the machine exists. Harts wrapped by the
 * service (its pausable harts, `inner` the real one) are debugged through the real hart while
 * their batches still go through the wrapper.
 *
 * @example
 * ```ts
 * // const dbg = new MachineDebugger({ waitForClient: true });
 * // const m = new Machine({ ..., debug: dbg.hook, clock: dbg.clock });
 * // const addr = dbg.attach(m, { hostname: "127.0.0.1", port: 0 });
 * ```
 * @module
 */
import type { StopReason } from "../engine.ts";
import type { Machine } from "../machine/machine.ts";
import { type VmClock, WallClock } from "../machine/clock.ts";
import { type DebugHart, GdbStub } from "./gdb_stub.ts";
import { type GdbAddress, GdbServer } from "./gdb_server.ts";
import { HeldClock } from "./held_clock.ts";

/** A stub and its TCP server for one machine. */
export class MachineDebugger {
  /** Guest time that stands still while gdb holds the harts (QEMU's virtual clock). */
  readonly clock: HeldClock;
  /** Give as `MachineOptions.debug`. */
  readonly hook: { runBatch(budget: number, hart: number): Promise<StopReason> };
  #stub: GdbStub | undefined;
  #server: GdbServer | undefined;
  #opts: { waitForClient?: boolean };
  #exitPoll: ReturnType<typeof setInterval> | undefined;

  constructor(opts: { waitForClient?: boolean; clock?: VmClock } = {}) {
    this.#opts = opts;
    this.clock = new HeldClock(opts.clock ?? new WallClock());
    this.hook = { runBatch: (budget, hart) => this.#stub!.runBatch(budget, hart) };
  }

  /** Makes the stub for `m` and listens at `addr`; returns where it listens. */
  attach(m: Machine, addr: GdbAddress): GdbAddress {
    const harts = m.harts.map((h) => debugView(h));
    this.#stub = new GdbStub({
      harts,
      mem: m.mem,
      kill: () => m.stop(0),
      hold: () => this.clock.hold(),
      release: () => this.clock.release(),
    }, this.#opts);
    this.#server = new GdbServer(this.#stub, addr);
    // A stop from outside (ctl.stop: exit code 0) while gdb holds the harts: they are let go
    // (the run loop waits in the stub) and gdb learns it ended.
    this.#exitPoll = setInterval(() => {
      if (m.stopCause !== undefined && this.#stub?.stopped) this.targetExited(0);
    }, 100);
    return this.#server.addr;
  }

  /** The guest ended: gdb gets `W`, held harts are let go. */
  targetExited(code: number): void {
    this.#stub?.targetExited(code);
    if (this.#exitPoll !== undefined) clearInterval(this.#exitPoll);
    this.#exitPoll = undefined;
  }

  /** Ends the session and the server. */
  async close(code: number): Promise<void> {
    this.targetExited(code);
    await this.#server?.close();
  }
}

/** The hart gdb sees: the real one (registers, CSRs), with batches through the wrapper. */
function debugView(h: unknown): DebugHart {
  const wrapper = h as { inner?: unknown; run(n: number, resume?: boolean): StopReason };
  const real = (wrapper.inner ?? h) as DebugHart;
  if (real === h) return real;
  return new Proxy(real as object, {
    get(target, p) {
      if (p === "run") return (n: number, resume?: boolean) => wrapper.run(n, resume);
      const v = Reflect.get(target, p, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
    set(target, p, v) {
      return Reflect.set(target, p, v, target);
    },
  }) as DebugHart;
}
