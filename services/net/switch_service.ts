/**
 * A virtual switch on the bus: ports join and leave with request/reply on
 * `vmesh.net.<switch>.{join,leave}`; frames a port publishes on
 * `vmesh.net.<switch>.port.<port>.tx` go through the switch to the rx subjects of the
 * ports it picks. A join repeated with the same MAC is the port's heartbeat; bus ports
 * that neither join nor send for the aging time are removed. A port whose join says `batch`
 * gets the frames of one event-loop turn as one message (`Frame.more`); the join reply says
 * the switch reads such batches on tx too.
 * @module
 */

import type { Subscription } from "@nats-io/transport-node";
import {
  type Bus,
  BusError,
  checkToken,
  type DeviceService,
  net,
  netPortSubject,
  serveSubjectOp,
  Status,
  switchPrefix,
} from "@vmesh/bus";
import { isMac } from "./mac.ts";
import type { SwitchStats, VirtualSwitch } from "./switch.ts";

/** Service name for discovery. */
export const SERVICE_NAME = "vmesh-net";

/** Largest join/leave request accepted (they are a few dozen bytes). */
export const MAX_CONTROL_BYTES = 4096;

/** Most frame bytes in one batch message to a port (far under NATS's 1 MiB max_payload). */
export const MAX_BATCH_BYTES = 256 * 1024;

/** Where the switch serves. */
export interface SwitchServiceOptions {
  /** Service version for discovery (semver). */
  version: string;
  /** Reports dropped frames and similar, one line each. */
  log: (line: string) => void;
  /** More counters for `$SRV.STATS` (gateway, uplinks), merged into the switch's. */
  extraStats?: () => Record<string, unknown>;
}

function invalid(message: string): BusError {
  return new BusError(Status.INVALID_ARGUMENT, message);
}

/** Runs one {@link VirtualSwitch} on the bus. */
export class SwitchService {
  #sub?: Subscription;
  #portOps: Subscription[] = [];
  #svc?: DeviceService;
  #aging?: ReturnType<typeof setInterval>;
  readonly #warned = new Set<string>();
  /** Frames for batching ports, waiting for the end of this turn: port id → batch. */
  readonly #batches = new Map<
    string,
    { subject: string; seq: number; frames: Uint8Array[]; bytes: number }
  >();
  #flushQueued = false;
  /** Messages published to ports (a batch is one) and frames that went in batches. */
  readonly counters = { rxMessages: 0, txMessages: 0, txBatchedFrames: 0 };

  /** A switch service for `sw` on `bus`; call {@link SwitchService.start} to serve. */
  constructor(readonly bus: Bus, readonly sw: VirtualSwitch, readonly opts: SwitchServiceOptions) {}

  /** Subscribes to the ports' tx subjects, serves join/leave and starts aging. */
  async start(): Promise<DeviceService> {
    const name = this.sw.name;
    // Raw subscription: frames are the hot path, and garbage must be counted, not just logged.
    this.#sub = this.bus.nc.subscribe(`${switchPrefix(name)}.port.*.tx`, {
      callback: (err, msg) => {
        if (err) return;
        // vmesh.net.<switch>.port.<port>.tx: the port id is the fifth token.
        this.receive(msg.subject.split(".")[4], msg.data);
      },
    });
    this.#svc = await this.bus.serve({
      prefix: switchPrefix(name),
      device: name,
      name: SERVICE_NAME,
      version: this.opts.version,
      description: "vmesh virtual L2 switch",
      ops: net.ops,
      handlers: { join: (req) => this.#join(req), leave: (req) => this.#leave(req) },
      maxPayloadBytes: MAX_CONTROL_BYTES,
      metadata: { switch: name, mode: this.sw.mode, mtu: String(this.sw.mtu) },
      statsData: () => this.stats(),
    });
    // Each port's own join/leave subject: bus permissions let a VM publish only to its ports'.
    const own = { service: SERVICE_NAME, device: name, maxPayloadBytes: MAX_CONTROL_BYTES };
    const portOf = (subject: string, portId: string) => {
      // vmesh.net.<switch>.port.<port>.<op>: the port id is the fifth token.
      const port = subject.split(".")[4];
      if (port !== portId) {
        throw invalid(`port ${JSON.stringify(portId)} cannot be joined or left on ${subject}`);
      }
    };
    this.#portOps = [
      serveSubjectOp(this.bus, `${switchPrefix(name)}.port.*.join`, net.ops.join, (req, ctx) => {
        portOf(ctx.subject, req.portId);
        return this.#join(req);
      }, own),
      serveSubjectOp(this.bus, `${switchPrefix(name)}.port.*.leave`, net.ops.leave, (req, ctx) => {
        portOf(ctx.subject, req.portId);
        return this.#leave(req);
      }, own),
    ];
    const every = Math.max(250, Math.min(10_000, this.sw.agingMs / 4));
    this.#aging = setInterval(() => {
      for (const id of this.sw.age()) {
        this.opts.log(`${SERVICE_NAME}: ${name}: port ${id} aged out (no join or frame)`);
      }
    }, every);
    return this.#svc;
  }

  /** Counters of the switch (and what `extraStats` adds), as `$SRV.STATS` reports them. */
  stats(): SwitchStats & Record<string, unknown> {
    return { ...this.sw.stats(), ...this.counters, ...this.opts.extraStats?.() };
  }

  /** Takes one encoded `net.Frame` (one frame, or a batch in `more`) that port `from` published. */
  receive(from: string, payload: Uint8Array): void {
    let f: net.Frame;
    try {
      f = net.frame.codec.decode(payload);
    } catch {
      this.sw.countDrop("malformed");
      this.#warnOnce(from, `undecodable message from port ${from} dropped`);
      return;
    }
    this.counters.rxMessages++;
    this.forward(from, f.data ?? new Uint8Array());
    if (f.more) { for (const m of f.more) this.forward(from, m); }
  }

  /** Forwards one frame sent by port `from`. */
  forward(from: string, data: Uint8Array): void {
    const targets = this.sw.input(from, data);
    if (targets.length === 0 && !this.sw.ports.has(from)) {
      this.#warnOnce(from, `frames from unjoined port ${from} dropped`);
    }
  }

  /** Stops serving, forwarding and aging. */
  async stop(): Promise<void> {
    this.flush();
    clearInterval(this.#aging);
    this.#sub?.unsubscribe();
    for (const s of this.#portOps) s.unsubscribe();
    await this.#svc?.stop();
  }

  #join(req: net.PortJoin): net.PortJoinReply {
    this.#checkSwitch(req.switch);
    const portId = this.#checkPort(req.portId);
    if (!isMac(req.mac)) {
      throw invalid(`mac ${JSON.stringify(req.mac)} is not aa:bb:cc:dd:ee:ff`);
    }
    // Frames batched for the port so far go first (a join may change how it takes them).
    this.#flushPort(portId);
    this.sw.join(portId, req.mac, this.#sinkFor(portId, req.batch === true));
    this.#warned.delete(portId);
    return { status: Status.OK, mtu: this.sw.mtu, agingMs: this.sw.agingMs, batch: true };
  }

  #leave(req: net.PortLeave): net.PortLeaveReply {
    this.#checkSwitch(req.switch);
    // Leaving twice (a retry after a restart) is not an error: the port is gone.
    this.sw.leave(this.#checkPort(req.portId));
    return { status: Status.OK };
  }

  /**
   * A bus port's sink: publish on its rx subject (never busy; NATS buffers). Raw publish,
   * like the raw tx subscription: no span per frame on the hot path. A batching port's frames
   * wait for the end of this turn (every frame the switch took from one socket read) and go
   * as one message.
   */
  #sinkFor(portId: string, batch: boolean): (frame: Uint8Array) => boolean {
    const subject = netPortSubject(this.sw.name, portId, "rx");
    if (!batch) {
      return (data) => {
        const seq = this.sw.ports.get(portId)?.nextSeq ?? 0;
        this.bus.nc.publish(subject, net.frame.codec.encode({ data, seq }));
        this.counters.txMessages++;
        return true;
      };
    }
    return (data) => {
      let b = this.#batches.get(portId);
      if (!b) {
        b = { subject, seq: this.sw.ports.get(portId)?.nextSeq ?? 0, frames: [], bytes: 0 };
        this.#batches.set(portId, b);
      }
      b.frames.push(data);
      b.bytes += data.length;
      if (b.bytes >= MAX_BATCH_BYTES) this.#flushPort(portId);
      else if (!this.#flushQueued) {
        this.#flushQueued = true;
        queueMicrotask(() => this.flush());
      }
      return true;
    };
  }

  /** Publishes every batch waiting for the end of the turn. */
  flush(): void {
    this.#flushQueued = false;
    for (const id of [...this.#batches.keys()]) this.#flushPort(id);
  }

  #flushPort(portId: string): void {
    const b = this.#batches.get(portId);
    if (!b) return;
    this.#batches.delete(portId);
    try {
      this.bus.nc.publish(
        b.subject,
        net.frame.codec.encode({ data: b.frames[0], seq: b.seq, more: b.frames.slice(1) }),
      );
      this.counters.txMessages++;
      this.counters.txBatchedFrames += b.frames.length;
    } catch {
      // The bus connection is closing: the frames are lost, as on a wire.
      for (let i = 0; i < b.frames.length; i++) this.sw.countDrop("sink_error");
    }
  }

  #warnOnce(port: string, line: string): void {
    if (this.#warned.has(port)) return;
    // Bounded: a flood of made-up port ids must not grow memory without end.
    if (this.#warned.size > 1024) this.#warned.clear();
    this.#warned.add(port);
    this.opts.log(`${SERVICE_NAME}: ${this.sw.name}: ${line}`);
  }

  #checkSwitch(name: string): void {
    if (name !== this.sw.name) {
      throw new BusError(
        Status.NOT_FOUND,
        `this is switch ${this.sw.name}, not ${JSON.stringify(name)}`,
      );
    }
  }

  #checkPort(id: string): string {
    try {
      return checkToken("port", id);
    } catch (err) {
      throw invalid((err as Error).message);
    }
  }
}
