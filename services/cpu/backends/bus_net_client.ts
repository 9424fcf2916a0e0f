/**
 * A `NetBackendClient` over the bus: the VM's virtio-net port on a virtual switch of the net
 * service. Frames the guest sends are published on `vmesh.net.<switch>.port.<port>.tx`;
 * frames on the port's `rx` subject are handed to the receiver (`VirtioNet.receive`).
 * The port joins the switch at start and again periodically, so a restarted switch (which
 * forgets its ports) gets the port back.
 *
 * Batches: frames sent in one event-loop turn (a run-loop batch of the guest) go out as one
 * message (`Frame.more`) when the switch said it reads them (`PortJoinReply.batch`); the
 * port's join says it reads batches on rx (`PortJoin.batch`). With an older switch each frame
 * is its own message, as before.
 */

import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import type { Subscription } from "@nats-io/transport-node";
import { type Bus, net, netPortPrefix, netPortSubject } from "@vmesh/bus";
import type { NetBackendClient } from "../virtio/net.ts";
import { FrameSampler, TRACING_ENABLED } from "../tracing.ts";

/** Options of a {@link BusNetClient}. */
export interface BusNetClientOptions {
  /** Switch name. */
  switch: string;
  /** Port id on the switch (a subject token, e.g. "vm1-net0"). */
  port: string;
  /** MAC address, "52:54:00:12:34:56". */
  mac: string;
  /** Re-join period in ms (default 2000; 0: join once). */
  rejoinMs?: number;
  /** Ask for and send frame batches (default true; false: one message per frame, as before). */
  batch?: boolean;
}

/**
 * Most frame bytes in one batch message (well under NATS's default 1 MiB max_payload, with
 * room for one more largest frame).
 */
export const MAX_BATCH_BYTES = 256 * 1024;

/**
 * Writes what the NATS client buffered to its socket at once (Deno's socket writes are
 * synchronous) instead of in the microtask it schedules. Uses the client's internal
 * `protocol.flushPending` when it is there; without it the microtask still flushes.
 */
function writeNow(nc: unknown): void {
  const protocol = (nc as { protocol?: { flushPending?: () => void } }).protocol;
  if (typeof protocol?.flushPending === "function") protocol.flushPending();
}

/** One switch port, as the virtio-net device's backend. */
export class BusNetClient implements NetBackendClient {
  readonly #tx: string;
  readonly #rx: string;
  #sub?: Subscription;
  #timer?: ReturnType<typeof setInterval>;
  #seq = 0;
  /** Frames waiting for this turn's batch message, and their bytes. */
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  /** True after the switch answered the last join. */
  joined = false;
  /** MTU the switch reported. */
  mtu = 0;
  /** The switch reads batches (its last join reply said so). */
  switchBatches = false;
  /** Frames received from the switch (delivered or not). */
  rxFrames = 0;
  /** Messages sent and received (a batch is one). */
  txMessages = 0;
  rxMessages = 0;
  /** Batched frames lost because the bus would not take their message. */
  txDropped = 0;
  /** Messages on the rx subject that did not decode (dropped). */
  rxMalformed = 0;
  // With tracing on, 1 in VMESH_TRACE_SAMPLE_FRAMES sent frames is traced (see tracing.ts).
  readonly #sampler?: FrameSampler;

  constructor(readonly bus: Bus, readonly opts: BusNetClientOptions) {
    this.#tx = netPortSubject(opts.switch, opts.port, "tx");
    this.#rx = netPortSubject(opts.switch, opts.port, "rx");
    if (TRACING_ENABLED) this.#sampler = new FrameSampler(opts.switch, opts.port);
  }

  /** This port's subject prefix: its join/leave go there (only this port's login may). */
  get prefix(): string {
    return netPortPrefix(this.opts.switch, this.opts.port);
  }

  /**
   * Subscribes to the port's rx subject (frames go to `receive`) and joins the switch.
   * Resolves after the first join attempt; a missing switch is retried in the background.
   */
  async start(receive: (frame: Uint8Array) => void): Promise<void> {
    // Raw subscription: frames are the hot path (no span per frame), garbage is counted.
    this.#sub = this.bus.nc.subscribe(this.#rx, {
      callback: (err, msg) => {
        if (err) return;
        let f: net.Frame;
        try {
          f = net.frame.codec.decode(msg.data);
        } catch {
          this.rxMalformed++;
          return;
        }
        this.rxMessages++;
        this.rxFrames++;
        receive(f.data ?? new Uint8Array());
        if (f.more) {
          for (const m of f.more) {
            this.rxFrames++;
            receive(m);
          }
        }
      },
    });
    await this.#join();
    const every = this.opts.rejoinMs ?? 2000;
    if (every > 0) this.#timer = setInterval(() => void this.#join(), every);
  }

  async #join(): Promise<void> {
    try {
      const r = await this.bus.request({ prefix: this.prefix }, net.ops.join, {
        switch: this.opts.switch,
        mac: this.opts.mac,
        portId: this.opts.port,
        batch: this.opts.batch ?? true,
      }, { timeoutMs: 1000, retries: 1 });
      this.mtu = r.mtu;
      this.switchBatches = r.batch === true && (this.opts.batch ?? true);
      this.joined = true;
    } catch {
      this.joined = false;
    }
  }

  /**
   * Sends one frame from the guest; never waits. To a switch that reads batches it goes out
   * with the others of this turn (a microtask later: when the NATS client would write it).
   */
  send(frame: Uint8Array): void {
    if (!this.#sampler) {
      if (!this.switchBatches) {
        this.txMessages++;
        this.bus.nc.publish(this.#tx, net.frame.codec.encode({ data: frame, seq: this.#seq++ }));
        return;
      }
      if (this.#pending.length === 0) queueMicrotask(() => this.flush());
      this.#pending.push(frame);
      this.#pendingBytes += frame.length;
      if (this.#pendingBytes >= MAX_BATCH_BYTES) this.flush();
      return;
    }
    const span = this.#sampler.sample("tx", frame.length);
    if (!span) {
      // Unsampled: straight to NATS, so the bus makes no span (and no trace headers) for it.
      this.bus.nc.publish(this.#tx, net.frame.codec.encode({ data: frame, seq: this.#seq++ }));
      return;
    }
    try {
      this.bus.publish(net.frame, this.#tx, { data: frame, seq: this.#seq++ }, {
        context: trace.setSpan(ROOT_CONTEXT, span),
      });
    } finally {
      span.end();
    }
  }

  /**
   * Sends the frames of one tx kick as one message and writes it to the socket now: the kick
   * comes from inside a hart's batch, and waiting for its end (the microtask the NATS client
   * flushes in) cost ~2 ms per frame under load (measured: CPU tx to switch rx).
   */
  sendMany(frames: Uint8Array[]): void {
    for (const f of frames) this.send(f);
    this.flush();
    writeNow(this.bus.nc);
  }

  /** Publishes the frames waiting for this turn's batch as one message. */
  flush(): void {
    const frames = this.#pending;
    if (frames.length === 0) return;
    this.#pending = [];
    this.#pendingBytes = 0;
    const seq = this.#seq;
    this.#seq += frames.length;
    try {
      this.bus.nc.publish(
        this.#tx,
        net.frame.codec.encode({ data: frames[0], seq, more: frames.slice(1) }),
      );
      this.txMessages++;
    } catch {
      // The connection is closed or draining: the frames are lost, as a wire would lose them.
      this.txDropped += frames.length;
    }
  }

  /**
   * Stops receiving and re-joining without leaving the switch (a live migration hands the port
   * to the target CPU service, which joins it again); `start` undoes it.
   */
  detach(): void {
    this.flush();
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  /** Leaves the switch (best effort) and stops receiving. */
  async close(): Promise<void> {
    this.flush();
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    try {
      await this.bus.request({ prefix: this.prefix }, net.ops.leave, {
        switch: this.opts.switch,
        portId: this.opts.port,
      }, { timeoutMs: 500, retries: 0 });
    } catch { /* the switch may be gone already */ }
  }
}
