/**
 * A virtual switch on the bus: ports join and leave with request/reply on
 * `vmesh.net.<switch>.{join,leave}`; frames a port publishes on
 * `vmesh.net.<switch>.port.<port>.tx` are forwarded to the rx subjects of the ports the
 * switch picks.
 * @module
 */

import {
  type Bus,
  BusError,
  type BusSubscription,
  checkToken,
  type DeviceService,
  net,
  netPortSubject,
  Status,
  switchPrefix,
} from "@vmesh/bus";
import { isMac } from "./port.ts";
import type { VirtualSwitch } from "./switch.ts";

/** Service name for discovery. */
export const SERVICE_NAME = "vmesh-net";

/** Largest join/leave request accepted (they are a few dozen bytes). */
export const MAX_CONTROL_BYTES = 4096;

/** Where the switch serves. */
export interface SwitchServiceOptions {
  /** Service version for discovery (semver). */
  version: string;
  /** Reports dropped frames and similar, one line each. */
  log: (line: string) => void;
}

function invalid(message: string): BusError {
  return new BusError(Status.INVALID_ARGUMENT, message);
}

/** Runs one {@link VirtualSwitch} on the bus. */
export class SwitchService {
  #sub?: BusSubscription;
  #svc?: DeviceService;
  readonly #warned = new Set<string>();

  /** A switch service for `sw` on `bus`; call {@link SwitchService.start} to serve. */
  constructor(readonly bus: Bus, readonly sw: VirtualSwitch, readonly opts: SwitchServiceOptions) {}

  /** Subscribes to the ports' tx subjects and serves join/leave. */
  async start(): Promise<DeviceService> {
    const name = this.sw.name;
    const txAll = `${switchPrefix(name)}.port.*.tx`;
    this.#sub = this.bus.subscribe(net.frame, txAll, (frame, ctx) => {
      // vmesh.net.<switch>.port.<port>.tx: the port id is the fifth token.
      this.forward(ctx.subject.split(".")[4], frame.data);
    }, { device: name });
    this.#svc = await this.bus.serve({
      prefix: switchPrefix(name),
      device: name,
      name: SERVICE_NAME,
      version: this.opts.version,
      description: "vmesh virtual L2 switch",
      ops: net.ops,
      handlers: {
        join: (req) => {
          this.#checkSwitch(req.switch);
          const portId = this.#checkPort(req.portId);
          if (!isMac(req.mac)) {
            throw invalid(`mac ${JSON.stringify(req.mac)} is not aa:bb:cc:dd:ee:ff`);
          }
          this.sw.join(portId, req.mac);
          this.#warned.delete(portId);
          return { status: Status.OK, mtu: this.sw.mtu };
        },
        leave: (req) => {
          this.#checkSwitch(req.switch);
          // Leaving twice (a retry after a restart) is not an error: the port is gone.
          this.sw.leave(this.#checkPort(req.portId));
          return { status: Status.OK };
        },
      },
      maxPayloadBytes: MAX_CONTROL_BYTES,
      metadata: { switch: name, mode: this.sw.mode, mtu: String(this.sw.mtu) },
    });
    return this.#svc;
  }

  /** Forwards one frame sent by port `from`. */
  forward(from: string, data: Uint8Array): void {
    const targets = this.sw.route(from, data);
    if (targets.length === 0 && !this.sw.ports.has(from) && !this.#warned.has(from)) {
      this.#warned.add(from);
      this.opts.log(`${SERVICE_NAME}: ${this.sw.name}: frames from unjoined port ${from} dropped`);
    }
    for (const port of targets) {
      try {
        this.bus.publish(net.frame, netPortSubject(this.sw.name, port.id, "rx"), {
          data,
          seq: port.nextSeq++,
        });
        port.txFrames++;
      } catch (err) {
        this.sw.dropped++;
        this.opts.log(`${SERVICE_NAME}: ${this.sw.name}: to ${port.id}: ${(err as Error).message}`);
      }
    }
  }

  /** Stops serving and forwarding. */
  async stop(): Promise<void> {
    this.#sub?.unsubscribe();
    await this.#svc?.stop();
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
