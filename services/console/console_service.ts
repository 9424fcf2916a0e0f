/**
 * The console service: guest output batches from `vmesh.<vm>.console.out` go, in stream
 * order, to every attached sink; keyboard input goes out as batches on
 * `vmesh.<vm>.console.in`. One request op, `send`, types bytes for automation.
 * @module
 */

import {
  type Bus,
  BusError,
  type BusSubscription,
  type common,
  consoleMsgs,
  consoleSubject,
  defineOp,
  type DeviceService,
  type Op,
  Status,
} from "@vmesh/bus";
import type { ConsoleSink } from "./console_sink.ts";
import { StreamOrder } from "./stream_order.ts";

/** Service name for discovery. */
export const SERVICE_NAME = "vmesh-console";

/** Largest `send` request accepted (bytes of protobuf payload). */
export const MAX_SEND_BYTES = 64 * 1024;

/**
 * The console's request ops: `send` publishes `data` on the console input stream as if
 * typed (its `seq` is ignored; the service numbers the stream). Replies Empty.
 */
export const ops: { send: Op<consoleMsgs.ByteBatch, common.Empty> } = {
  send: defineOp("send", "vmesh.console.ByteBatch", "vmesh.common.Empty"),
};

/** Where the console attaches. */
export interface ConsoleServiceOptions {
  /** VM name: the `<vm>` subject token. */
  vm: string;
  /** Service version for discovery (semver). */
  version: string;
  /** Output backends, written in this order. */
  sinks: ConsoleSink[];
  /** Where problems (gaps, sink failures) are reported, one line each. */
  log: (line: string) => void;
}

/** A running console: output to sinks, input from {@link ConsoleService.type}. */
export class ConsoleService {
  /** Position tracking of the output stream. */
  readonly order: StreamOrder = new StreamOrder();
  /** Stream position of the next input byte. */
  inSeq = 0;
  #writes: Promise<void> = Promise.resolve();
  #failed = new Set<ConsoleSink>();
  #sub?: BusSubscription;
  #svc?: DeviceService;

  /** A console on `bus`; call {@link ConsoleService.start} to attach it. */
  constructor(readonly bus: Bus, readonly opts: ConsoleServiceOptions) {}

  /** Subscribes to guest output and serves the `send` op. */
  async start(): Promise<DeviceService> {
    const { vm } = this.opts;
    this.#sub = this.bus.subscribe(
      consoleMsgs.byteBatch,
      consoleSubject(vm, "out"),
      (batch) => this.output(batch.seq, batch.data),
      { vm, device: "console" },
    );
    this.#svc = await this.bus.serve({
      vm,
      device: "console",
      name: SERVICE_NAME,
      version: this.opts.version,
      description: "vmesh serial console",
      ops,
      handlers: {
        send: (req) => {
          this.type(req.data);
          return {};
        },
      },
      maxPayloadBytes: MAX_SEND_BYTES,
      metadata: { sinks: this.opts.sinks.map((s) => s.name).join(",") },
    });
    return this.#svc;
  }

  /** Takes one output batch: drops what was seen, logs gaps, queues the rest for the sinks. */
  output(seq: number, data: Uint8Array): void {
    const { bytes, gap } = this.order.accept(seq, data);
    if (gap > 0) this.opts.log(`${SERVICE_NAME}: lost ${gap} bytes of output before ${seq}`);
    if (bytes.length === 0) return;
    // Sinks are written from one promise chain, so batches land in stream order.
    this.#writes = this.#writes.then(() => this.#toSinks(bytes));
  }

  /** Publishes keyboard bytes to the guest as one input batch. */
  type(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    try {
      this.bus.publish(consoleMsgs.byteBatch, consoleSubject(this.opts.vm, "in"), {
        seq: this.inSeq,
        data: bytes,
      }, { vm: this.opts.vm, device: "console" });
    } catch (err) {
      throw err instanceof BusError ? err : new BusError(Status.UNAVAILABLE, `${err}`);
    }
    this.inSeq += bytes.length;
  }

  /** Resolves when every output batch received so far is written. */
  settled(): Promise<void> {
    return this.#writes;
  }

  /** Stops serving and subscribing, writes what is queued, closes the sinks. */
  async stop(): Promise<void> {
    this.#sub?.unsubscribe();
    await this.#svc?.stop();
    await this.#writes;
    for (const sink of this.opts.sinks) await sink.close().catch(() => {});
  }

  async #toSinks(bytes: Uint8Array): Promise<void> {
    for (const sink of this.opts.sinks) {
      if (this.#failed.has(sink)) continue;
      try {
        await sink.write(bytes);
      } catch (err) {
        // A broken sink (closed terminal, full disk) is reported once and skipped after.
        this.#failed.add(sink);
        this.opts.log(`${SERVICE_NAME}: ${sink.name} failed, detached: ${(err as Error).message}`);
      }
    }
  }
}
