/**
 * The `Bus` handle: one NATS connection with typed request/reply, services and
 * publish/subscribe on it.
 *
 * @module
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { type CallOptions, type DeviceClient, deviceClient, request } from "./client.ts";
import type { Op, Ops, Topic } from "./contract.ts";
import type { BusCore, Logger, Target } from "./core.ts";
import {
  type BusSubscription,
  type MessageContext,
  publish,
  type PublishOptions,
  subscribe,
  type SubscribeOptions,
} from "./pubsub.ts";
import type { EmbeddedNats } from "./nats_server.ts";
import { type DeviceService, serve, type ServiceOptions } from "./service.ts";

/** The part of nats.js' connection that writes its queue (`NatsConnectionImpl.protocol`). */
interface QueuedWriter {
  protocol?: { flushPending?: () => void };
}

/** Writes the queued protocol of `nc` now (see {@link Bus.sendNow}). */
export function sendQueued(nc: NatsConnection): void {
  // Without that internal (another nats.js), the queue goes out when the task ends, as before;
  // bus/send_now_test.ts fails then.
  (nc as unknown as QueuedWriter).protocol?.flushPending?.();
}

/** A connection to the bus. Make one with {@link connect}. */
export class Bus implements BusCore {
  /** The underlying NATS connection (for what the bus API does not cover). */
  readonly nc: NatsConnection;
  /** The URL connected to (pass it to child processes as NATS_URL). */
  readonly url: string;
  /** The logger of this connection. */
  readonly log: Logger;
  /** The private server this connection started or shares, if it is on one. */
  readonly embedded?: EmbeddedNats;
  readonly #release?: () => Promise<void>;
  #closed = false;

  /** Use {@link connect}; this wraps an existing connection. */
  constructor(
    nc: NatsConnection,
    url: string,
    log: Logger,
    embedded?: { server: EmbeddedNats; release: () => Promise<void> },
  ) {
    this.nc = nc;
    this.url = url;
    this.log = log;
    this.embedded = embedded?.server;
    this.#release = embedded?.release;
  }

  /** Typed request to `<prefix>.<op>`; see {@link request}. */
  request<Req, Res>(target: Target, op: Op<Req, Res>, req: Req, opts?: CallOptions): Promise<Res> {
    return request(this, target, op, req, opts);
  }

  /** A typed client for a device's ops: `bus.client({vm, device}, block.ops)`. */
  client<O extends Ops>(target: Target, ops: O, defaults?: CallOptions): DeviceClient<O> {
    return deviceClient(this, target, ops, defaults);
  }

  /** Serves a device's ops and registers it for discovery; see {@link serve}. */
  serve<O extends Ops>(opts: ServiceOptions<O>): Promise<DeviceService> {
    return serve(this, opts);
  }

  /** Publishes a typed message; see {@link publish}. */
  publish<T>(topic: Topic<T>, subject: string, value: T, opts?: PublishOptions): void {
    publish(this, topic, subject, value, opts);
  }

  /** Subscribes to typed messages; see {@link subscribe}. */
  subscribe<T>(
    topic: Topic<T>,
    subject: string,
    handler: (value: T, ctx: MessageContext) => void | Promise<void>,
    opts?: SubscribeOptions,
  ): BusSubscription {
    return subscribe(this, topic, subject, handler, opts);
  }

  /**
   * Writes what this connection has queued to the socket now. nats.js queues every publish and
   * writes the queue in a microtask, i.e. when the current task ends; a caller inside a long
   * synchronous run (the CPU loop's instruction batch, where virtio requests start) would hold
   * its requests until then. Nothing happens when the queue is empty or the connection is not
   * up (the queue then goes out as usual).
   */
  sendNow(): void {
    sendQueued(this.nc);
  }

  /** Waits until everything published so far reached the server. */
  flush(): Promise<void> {
    return this.nc.flush();
  }

  /** Drains and closes the connection; stops the embedded server if this was its last user. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      if (!this.nc.isClosed()) await this.nc.drain();
    } catch { /* already closing */ }
    await this.#release?.();
  }
}
