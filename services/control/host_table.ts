/**
 * The hosts the control service knows, from their agents' `control.HostLoad` announcements
 * (kept in memory: a restarted control service has them back within one announcement
 * interval). A host whose last announcement is older than the lost timeout is down.
 * @module
 */

import type { control } from "@vmesh/bus";

/** One host: its last announcement and when it arrived. */
export interface HostEntry {
  load: control.HostLoad;
  /** Local clock (ms since the epoch) when the last announcement arrived. */
  seenMs: number;
}

/**
 * Hosts by name, with up/down by announcement age.
 *
 * @example
 * ```ts
 * const t = new HostTable(5000);
 * t.announce(load);
 * t.isUp("h1"); // true for 5 s
 * ```
 */
export class HostTable {
  readonly #hosts = new Map<string, HostEntry>();
  /** When this table started: hosts named by records but never heard count from here. */
  readonly startedMs: number = Date.now();

  constructor(readonly lostTimeoutMs: number, readonly now: () => number = Date.now) {}

  /** Records an announcement; true when the host was down or unknown before. */
  announce(load: control.HostLoad): boolean {
    const wasUp = this.isUp(load.host);
    this.#hosts.set(load.host, { load, seenMs: this.now() });
    return !wasUp;
  }

  /** The host's last announcement, if any. */
  get(host: string): HostEntry | undefined {
    return this.#hosts.get(host);
  }

  /** Announced within the lost timeout. */
  isUp(host: string): boolean {
    const e = this.#hosts.get(host);
    return !!e && this.now() - e.seenMs <= this.lostTimeoutMs;
  }

  /** True when `host` is not up and the table has run for a lost timeout (a fair wait). */
  isLost(host: string): boolean {
    if (this.isUp(host)) return false;
    const since = this.#hosts.get(host)?.seenMs ?? this.startedMs;
    return this.now() - since > this.lostTimeoutMs;
  }

  /** Every host heard from. */
  all(): HostEntry[] {
    return [...this.#hosts.values()];
  }
}
