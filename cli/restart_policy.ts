/**
 * `--restart no|on-failure[:N]`: which device services a launcher restarts when they die, and
 * how often. Docker's policy names; the cap is systemd's start limit (StartLimitBurst in
 * StartLimitIntervalSec): at most N restarts in any 60 s, after which the service stays down.
 * @module
 */

/** The rolling window the restart cap counts in (systemd: StartLimitIntervalSec). */
export const RESTART_WINDOW_MS = 60_000;
/** Default restarts allowed per window (`--restart on-failure` without `:N`). */
export const DEFAULT_MAX_RESTARTS = 10;

/** When a dead service is started again. */
export interface RestartPolicy {
  /** "no": a service that exits ends the VM; "on-failure": restarted unless it exited 0. */
  mode: "no" | "on-failure";
  /** Restarts allowed in any {@link RESTART_WINDOW_MS}. */
  maxRestarts: number;
  /** The window in ms. */
  windowMs: number;
}

/** The default: restart a failed device service, at most 10 times a minute. */
export const DEFAULT_RESTART: RestartPolicy = {
  mode: "on-failure",
  maxRestarts: DEFAULT_MAX_RESTARTS,
  windowMs: RESTART_WINDOW_MS,
};

/** Parses a `--restart` value; throws a one-line Error naming the accepted forms. */
export function parseRestartFlag(value: string): RestartPolicy {
  if (value === "no") return { mode: "no", maxRestarts: 0, windowMs: RESTART_WINDOW_MS };
  const m = /^on-failure(?::(\d+))?$/.exec(value);
  if (!m) throw new Error(`--restart ${value}: want no or on-failure[:N] (N restarts a minute)`);
  const n = m[1] === undefined ? DEFAULT_MAX_RESTARTS : Number(m[1]);
  if (!(n >= 1 && n <= 1000)) throw new Error(`--restart ${value}: N must be 1 to 1000`);
  return { mode: "on-failure", maxRestarts: n, windowMs: RESTART_WINDOW_MS };
}

/** The restart cap of one service: restart times within the window. */
export class RestartBudget {
  readonly #times: number[] = [];

  constructor(readonly policy: RestartPolicy) {}

  /** Restarts counted since the service first started. */
  total = 0;

  /**
   * Whether a restart at `now` (ms) is allowed; if so it is counted. A service that exited 0
   * is never restarted (on-failure).
   */
  take(exitCode: number, now: number): boolean {
    if (this.policy.mode === "no" || exitCode === 0) return false;
    while (this.#times.length && this.#times[0] <= now - this.policy.windowMs) this.#times.shift();
    if (this.#times.length >= this.policy.maxRestarts) return false;
    this.#times.push(now);
    this.total++;
    return true;
  }

  /** Restarts within the window ending at `now`. */
  recent(now: number): number {
    return this.#times.filter((t) => t > now - this.policy.windowMs).length;
  }
}
