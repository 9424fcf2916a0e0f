/**
 * A launcher's supervision of one process it started (a disk or net service, the private
 * nats-server): when it dies it is started again with the same command line, as systemd's
 * Restart=on-failure or Docker's restart policy do, with a log line per restart, a short
 * back-off, and the cap of `--restart` (restart_policy.ts) after which it stays down.
 * @module
 */

import { RestartBudget, type RestartPolicy } from "./restart_policy.ts";

/** What a supervised process shows: enough to see it die and say how. */
export interface Supervisable {
  readonly pid: number;
  /** Resolves with the exit code when the process is gone. */
  readonly exited: Promise<number>;
  /** The signal that ended it, if any (read after `exited`). */
  readonly signal: Deno.Signal | null;
}

/** How long an exit waits before it counts as a death (the launcher may be stopping). */
const SETTLE_MS = 50;

/** Pause before restart n in a burst (systemd's RestartSec=100ms, doubled up to 1.6 s). */
function backoffMs(recent: number): number {
  return Math.min(1600, 100 * 2 ** Math.max(0, recent - 1));
}

/** One supervised process: `current` is the one running now. */
export class SupervisedService<P extends Supervisable> {
  #current: P;
  #stopping = false;
  readonly #budget: RestartBudget;
  /**
   * Resolves with the last process once the service is down for good: it exited and the
   * policy does not restart it (`--restart no`, a clean exit, or the cap was reached).
   */
  readonly down: Promise<P>;

  constructor(
    readonly label: string,
    first: P,
    readonly start: () => P | Promise<P>,
    policy: RestartPolicy,
    readonly say: (line: string) => void,
  ) {
    this.#current = first;
    this.#budget = new RestartBudget(policy);
    this.down = this.#watch();
  }

  /** The process running now (or the last one, once down). */
  get current(): P {
    return this.#current;
  }

  /** Restarts made so far. */
  get restarts(): number {
    return this.#budget.total;
  }

  /** Ends supervision: a later exit is the launcher's own stop, not a failure. */
  stopSupervising(): void {
    this.#stopping = true;
  }

  async #watch(): Promise<P> {
    const policy = this.#budget.policy;
    for (;;) {
      const p = this.#current;
      const code = await p.exited;
      // A launcher that is stopping may learn it a moment after its children do (Ctrl-C).
      await new Promise((r) => setTimeout(r, SETTLE_MS));
      if (this.#stopping) return p;
      const how = p.signal ? `was killed (${p.signal})` : `exited with code ${code}`;
      if (!this.#budget.take(code, Date.now())) {
        if (policy.mode === "on-failure") {
          this.say(
            code === 0
              ? `${this.label} ${how}; not restarted (a clean exit; --restart on-failure)`
              : `${this.label} ${how}; not restarted: ${policy.maxRestarts} restarts in the ` +
                `last ${policy.windowMs / 1000} s (--restart on-failure:${policy.maxRestarts}); ` +
                `it stays down`,
          );
        }
        return p;
      }
      const recent = this.#budget.recent(Date.now());
      const wait = backoffMs(recent);
      this.say(
        `${this.label} ${how}; restarting it in ${wait} ms (restart ${this.#budget.total}; ` +
          `${recent} of at most ${policy.maxRestarts} in ${policy.windowMs / 1000} s)`,
      );
      await new Promise((r) => setTimeout(r, wait));
      if (this.#stopping) return p;
      try {
        this.#current = await this.start();
      } catch (e) {
        // A start that throws counts as a failure of the new process: try again (or give up).
        this.say(`${this.label}: restart failed: ${(e as Error).message}`);
        this.#current = failedStart(p) as P;
        continue;
      }
      this.say(`restarted ${this.label} (pid ${this.#current.pid})`);
    }
  }
}

/** Stands for a process that could not be started at all (so the budget counts it). */
function failedStart(prev: Supervisable): Supervisable {
  return { pid: prev.pid, exited: Promise.resolve(1), signal: null };
}
