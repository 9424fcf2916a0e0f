/**
 * A UDP tunnel as a switch port: one Ethernet frame per datagram, both ways, between a
 * local and a remote UDP address. It is the wire format of QEMU's
 * `-netdev socket,udp=HOST:PORT,localaddr=HOST:PORT` (and of a switch on another host),
 * so a QEMU guest can sit on a vmesh switch without privileges.
 * @module
 */

import dgram from "node:dgram";
import type { VirtualSwitch } from "./switch.ts";

/** Where a UDP uplink listens and sends. */
export interface UdpEndpoints {
  localHost: string;
  localPort: number;
  remoteHost: string;
  remotePort: number;
}

/** A UDP uplink could not be set up. */
export class UdpUplinkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UdpUplinkError";
  }
}

/** A UDP tunnel bridged into a switch as port `udp:<local port>`. */
export class UdpPort {
  readonly portId: string;
  /** Datagrams received / sent, and send failures. */
  readonly stats = { read: 0, written: 0, writeErrors: 0 };
  #closed = false;

  private constructor(
    readonly ends: UdpEndpoints,
    readonly sw: VirtualSwitch,
    readonly socket: dgram.Socket,
    readonly log: (line: string) => void,
  ) {
    this.portId = `udp:${ends.localPort}`;
  }

  /** The name this uplink is listed under (`LHOST:LPORT>RHOST:RPORT`). */
  get name(): string {
    const e = this.ends;
    return `${e.localHost}:${e.localPort}>${e.remoteHost}:${e.remotePort}`;
  }

  /** Binds the local address and joins the switch; throws {@link UdpUplinkError}. */
  static async open(
    ends: UdpEndpoints,
    sw: VirtualSwitch,
    log: (line: string) => void = () => {},
  ): Promise<UdpPort> {
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", (e) =>
        reject(
          new UdpUplinkError(`udp ${ends.localHost}:${ends.localPort}: cannot bind: ${e.message}`),
        ));
      socket.bind(ends.localPort, ends.localHost, () => resolve());
    });
    const port = new UdpPort(ends, sw, socket, log);
    socket.on("error", (e) => log(`udp ${port.name}: ${e.message}`));
    socket.on("message", (msg: Uint8Array) => {
      port.stats.read++;
      sw.input(port.portId, new Uint8Array(msg));
    });
    sw.join(port.portId, "", (frame) => port.#send(frame), "uplink");
    return port;
  }

  #send(frame: Uint8Array): boolean {
    if (this.#closed) return true;
    this.socket.send(frame, this.ends.remotePort, this.ends.remoteHost, (err) => {
      if (!err) return;
      // Nobody listening yet (ICMP port unreachable) and the like: the frame is lost.
      if (this.stats.writeErrors++ === 0) this.log(`udp ${this.name}: send: ${err.message}`);
    });
    this.stats.written++;
    return true;
  }

  /** Leaves the switch and closes the socket. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.sw.leave(this.portId);
    await new Promise<void>((r) => this.socket.close(() => r()));
  }
}
