/**
 * A `NetBackendClient` over the bus: the VM's virtio-net port on a virtual switch of the net
 * service. Frames the guest sends are published on `vmesh.net.<switch>.port.<port>.tx`;
 * frames on the port's `rx` subject are handed to the receiver (`VirtioNet.receive`).
 * The port joins the switch at start and again periodically, so a restarted switch (which
 * forgets its ports) gets the port back.
 */

import { ROOT_CONTEXT, trace } from "@opentelemetry/api";
import { type Bus, type BusSubscription, net, netPortPrefix, netPortSubject } from "@vmesh/bus";
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
}

/** One switch port, as the virtio-net device's backend. */
export class BusNetClient implements NetBackendClient {
  readonly #tx: string;
  readonly #rx: string;
  #sub?: BusSubscription;
  #timer?: ReturnType<typeof setInterval>;
  #seq = 0;
  /** True after the switch answered the last join. */
  joined = false;
  /** MTU the switch reported. */
  mtu = 0;
  /** Frames received from the switch (delivered or not). */
  rxFrames = 0;
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
    this.#sub = this.bus.subscribe(net.frame, this.#rx, (f) => {
      this.rxFrames++;
      receive(f.data);
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
      }, { timeoutMs: 1000, retries: 1 });
      this.mtu = r.mtu;
      this.joined = true;
    } catch {
      this.joined = false;
    }
  }

  /** Publishes one frame from the guest; never waits. */
  send(frame: Uint8Array): void {
    if (!this.#sampler) {
      this.bus.publish(net.frame, this.#tx, { data: frame, seq: this.#seq++ });
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
   * Stops receiving and re-joining without leaving the switch (a live migration hands the port
   * to the target CPU service, which joins it again); `start` undoes it.
   */
  detach(): void {
    clearInterval(this.#timer);
    this.#sub?.unsubscribe();
    this.#sub = undefined;
  }

  /** Leaves the switch (best effort) and stops receiving. */
  async close(): Promise<void> {
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
