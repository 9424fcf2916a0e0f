/**
 * The forwarding core of a virtual L2 switch. In `learn` mode (the default) it learns
 * which port each source MAC lives behind, sends known unicast to that port only and
 * floods broadcast, multicast and unknown unicast to every port but the ingress one.
 * `hub` floods everything; `echo` returns each frame to its sender (tests, loopback).
 * Every port has a bounded output queue (drop-tail), so a slow port only loses its own
 * frames. Learned entries and silent bus ports age out.
 * @module
 */

import { formatMac, isGroupMac, macKey, parseMac } from "./mac.ts";
import { newPort, type Port, type PortKind, type PortSink } from "./port.ts";

/** How a switch forwards frames. */
export type SwitchMode = "learn" | "hub" | "echo";

/** The switch modes, for flag checks. */
export const SWITCH_MODES: readonly SwitchMode[] = ["learn", "hub", "echo"];

/** Smallest Ethernet frame without FCS we pass on (destination, source, ethertype). */
export const MIN_FRAME = 14;

/** Why a frame was dropped. */
export type DropReason =
  | "unjoined"
  | "runt"
  | "oversize"
  | "queue_full"
  | "filtered"
  | "malformed"
  | "sink_error";

/** Every drop reason, in a fixed order (for stats and metrics). */
export const DROP_REASONS: readonly DropReason[] = [
  "unjoined",
  "runt",
  "oversize",
  "queue_full",
  "filtered",
  "malformed",
  "sink_error",
];

/** Options of a {@link VirtualSwitch}. */
export interface SwitchOptions {
  /** Forwarding mode; default `learn`. */
  mode?: SwitchMode;
  /** Largest payload of a frame (bytes after the 14-byte header); default 1500. */
  mtu?: number;
  /** Learned MACs and silent bus ports are forgotten after this long (ms); default 300 s. */
  agingMs?: number;
  /** Frames a port's output queue holds before drop-tail; default 256. */
  queueLimit?: number;
  /** Most learned MACs; beyond, new sources are not learned (their frames still flood). */
  maxFdb?: number;
  /** Clock in ms; default `Date.now`. */
  now?: () => number;
}

/** A snapshot of a switch's counters (for `$SRV.STATS` and metrics). */
export interface SwitchStats {
  switch: string;
  mode: SwitchMode;
  mtu: number;
  ports: number;
  fdb: number;
  rxFrames: number;
  rxBytes: number;
  txFrames: number;
  txBytes: number;
  drops: Record<DropReason, number>;
  portStats: (Port & { queued: number })[];
}

interface FdbEntry {
  port: string;
  seen: number;
}

/** Ports of one switch, the forwarding table and the forwarding decision. */
export class VirtualSwitch {
  /** Attached ports by id, in join order. */
  readonly ports: Map<string, Port> = new Map();
  /** Frames dropped, by reason. */
  readonly drops: Record<DropReason, number> = Object.fromEntries(
    DROP_REASONS.map((r) => [r, 0]),
  ) as Record<DropReason, number>;
  /** Totals over all ports. */
  rxFrames = 0;
  rxBytes = 0;
  txFrames = 0;
  txBytes = 0;
  readonly mode: SwitchMode;
  readonly mtu: number;
  readonly agingMs: number;
  readonly queueLimit: number;
  readonly maxFdb: number;
  readonly now: () => number;
  readonly #fdb = new Map<number, FdbEntry>();
  readonly #sinks = new Map<string, PortSink>();
  readonly #queues = new Map<string, Uint8Array[]>();

  /** A switch named `name` (a subject token). */
  constructor(readonly name: string, opts: SwitchOptions = {}) {
    this.mode = opts.mode ?? "learn";
    this.mtu = opts.mtu ?? 1500;
    this.agingMs = opts.agingMs ?? 300_000;
    this.queueLimit = opts.queueLimit ?? 256;
    this.maxFdb = opts.maxFdb ?? 8192;
    this.now = opts.now ?? Date.now;
  }

  /** Frames dropped for any reason. */
  get dropped(): number {
    return DROP_REASONS.reduce((n, r) => n + this.drops[r], 0);
  }

  /** Counts a frame dropped outside the switch (a message that did not decode, ...). */
  countDrop(reason: DropReason): void {
    this.drops[reason]++;
  }

  /**
   * Attaches a port whose frames go to `sink`. A join with the id of an attached port and
   * the same MAC is a heartbeat (counters, queue and sequence numbers carry on); with
   * another MAC it replaces the port (a different VM took the id).
   */
  join(id: string, mac: string, sink: PortSink, kind: PortKind = "bus"): Port {
    const now = this.now();
    const prior = this.ports.get(id);
    const lower = mac.toLowerCase();
    let port: Port;
    if (prior && prior.mac === lower && prior.kind === kind) {
      port = prior;
      port.lastSeen = now;
    } else {
      if (prior) this.leave(id);
      port = newPort(id, lower, kind, now);
      this.ports.set(id, port);
      this.#queues.set(id, []);
    }
    this.#sinks.set(id, sink);
    // The announced MAC is known at once, so the first unicast to a quiet VM is not flooded.
    if (lower) this.#learn(macKey(parseMac(lower)), id, now);
    return port;
  }

  /** Detaches a port (its queue and learned MACs go with it); false if it was not attached. */
  leave(id: string): boolean {
    if (!this.ports.delete(id)) return false;
    this.#sinks.delete(id);
    this.#queues.delete(id);
    for (const [k, e] of this.#fdb) if (e.port === id) this.#fdb.delete(k);
    return true;
  }

  /** The port a MAC was learned on, if any. */
  lookup(mac: string): string | undefined {
    return this.#fdb.get(macKey(parseMac(mac)))?.port;
  }

  /** Learned MACs and their ports (colon form). */
  fdb(): Map<string, string> {
    const out = new Map<string, string>();
    for (const [k, e] of this.#fdb) {
      const b = new Uint8Array(6);
      for (let i = 5, v = k; i >= 0; i--, v = Math.floor(v / 256)) b[i] = v % 256;
      out.set(formatMac(b), e.port);
    }
    return out;
  }

  /** Frames waiting in a port's output queue. */
  queued(id: string): number {
    return this.#queues.get(id)?.length ?? 0;
  }

  /**
   * The ports a frame sent by port `from` goes to (empty: dropped, counted by reason).
   * Learns the source MAC and counts the frame as received; does not deliver.
   */
  route(from: string, frame: Uint8Array): Port[] {
    const src = this.ports.get(from);
    if (!src) return this.#drop("unjoined");
    if (frame.length < MIN_FRAME) return this.#drop("runt");
    // Payload up to the MTU after the header; a VLAN tag (0x8100) may add 4 bytes.
    const vlan = frame[12] === 0x81 && frame[13] === 0x00 ? 4 : 0;
    if (frame.length > this.mtu + MIN_FRAME + vlan) return this.#drop("oversize");
    const now = this.now();
    src.lastSeen = now;
    src.rxFrames++;
    src.rxBytes += frame.length;
    this.rxFrames++;
    this.rxBytes += frame.length;
    if (this.mode === "echo") return [src];
    if (this.mode === "learn") {
      if (!isGroupMac(frame, 6)) this.#learn(macKey(frame, 6), from, now);
      // A frame addressed to its own source MAC can only be for another station with the
      // same address (VMs left with a default MAC): flood it rather than filter it.
      if (!isGroupMac(frame, 0) && macKey(frame, 0) !== macKey(frame, 6)) {
        const hit = this.#fdb.get(macKey(frame, 0));
        const to = hit && now - hit.seen <= this.agingMs ? this.ports.get(hit.port) : undefined;
        if (to) return to.id === from ? this.#drop("filtered") : [to];
      }
    }
    const out: Port[] = [];
    for (const p of this.ports.values()) if (p.id !== from) out.push(p);
    return out;
  }

  /** Routes a frame from port `from` and queues it on every target port; returns the targets. */
  input(from: string, frame: Uint8Array): Port[] {
    const targets = this.route(from, frame);
    for (const port of targets) {
      const q = this.#queues.get(port.id)!;
      if (q.length >= this.queueLimit) {
        port.txDropped++;
        this.drops.queue_full++;
        continue;
      }
      q.push(frame);
      if (q.length === 1) this.#pump(port);
    }
    return targets;
  }

  /** Delivers what waits in a port's queue (call when a busy sink can take frames again). */
  resume(id: string): void {
    const port = this.ports.get(id);
    if (port) this.#pump(port);
  }

  /**
   * Forgets learned MACs not seen for the aging time and removes bus ports that have not
   * joined (heartbeat) or sent a frame for as long; returns the removed port ids.
   */
  age(): string[] {
    const now = this.now();
    for (const [k, e] of this.#fdb) if (now - e.seen > this.agingMs) this.#fdb.delete(k);
    const gone: string[] = [];
    for (const p of this.ports.values()) {
      if (p.kind === "bus" && now - p.lastSeen > this.agingMs) gone.push(p.id);
    }
    for (const id of gone) this.leave(id);
    // The switch's own responders never go quiet for good: keep their MACs known.
    for (const p of this.ports.values()) {
      if (p.kind === "internal" && p.mac) this.#learn(macKey(parseMac(p.mac)), p.id, now);
    }
    return gone;
  }

  /** A snapshot of every counter. */
  stats(): SwitchStats {
    return {
      switch: this.name,
      mode: this.mode,
      mtu: this.mtu,
      ports: this.ports.size,
      fdb: this.#fdb.size,
      rxFrames: this.rxFrames,
      rxBytes: this.rxBytes,
      txFrames: this.txFrames,
      txBytes: this.txBytes,
      drops: { ...this.drops },
      portStats: [...this.ports.values()].map((p) => ({ ...p, queued: this.queued(p.id) })),
    };
  }

  #pump(port: Port): void {
    const q = this.#queues.get(port.id);
    const sink = this.#sinks.get(port.id);
    if (!q || !sink) return;
    while (q.length > 0) {
      const frame = q[0];
      let taken: boolean;
      try {
        taken = sink(frame);
      } catch {
        // A sink that throws loses the frame, not the switch.
        q.shift();
        this.drops.sink_error++;
        continue;
      }
      if (!taken) return;
      q.shift();
      port.txFrames++;
      port.txBytes += frame.length;
      port.nextSeq++;
      this.txFrames++;
      this.txBytes += frame.length;
    }
  }

  #learn(key: number, port: string, now: number): void {
    const e = this.#fdb.get(key);
    if (e) {
      e.port = port;
      e.seen = now;
    } else if (this.#fdb.size < this.maxFdb) {
      this.#fdb.set(key, { port, seen: now });
    }
  }

  #drop(reason: DropReason): Port[] {
    this.drops[reason]++;
    return [];
  }
}
