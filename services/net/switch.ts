/**
 * The forwarding core of a virtual L2 switch: which ports a frame from one port goes
 * to. `hub` floods to every other port; `echo` returns each frame to its sender (for
 * tests). MAC learning is a later mode behind the same `route`.
 * @module
 */

import { newPort, type Port } from "./port.ts";

/** How a switch forwards frames. */
export type SwitchMode = "hub" | "echo";

/** Smallest Ethernet frame without FCS we pass on (destination, source, ethertype). */
export const MIN_FRAME = 14;

/** Ports of one switch and the forwarding decision. */
export class VirtualSwitch {
  /** Attached ports by id, in join order. */
  readonly ports: Map<string, Port> = new Map();
  /** Frames dropped: from a port that has not joined, or too short/long. */
  dropped = 0;

  /** A switch named `name` (a subject token) forwarding in `mode`. */
  constructor(readonly name: string, readonly mode: SwitchMode, readonly mtu = 1500) {}

  /** Attaches a port; a rejoin with the same id (a restarted VM) replaces it. */
  join(id: string, mac: string): Port {
    const port = newPort(id, mac);
    this.ports.set(id, port);
    return port;
  }

  /** Detaches a port; false if it was not attached. */
  leave(id: string): boolean {
    return this.ports.delete(id);
  }

  /** The ports a frame sent by port `from` is delivered to (empty: dropped). */
  route(from: string, frame: Uint8Array): Port[] {
    const src = this.ports.get(from);
    // Max frame: MTU payload plus the 14-byte header and an optional 4-byte VLAN tag.
    if (!src || frame.length < MIN_FRAME || frame.length > this.mtu + 18) {
      this.dropped++;
      return [];
    }
    src.rxFrames++;
    if (this.mode === "echo") return [src];
    const out: Port[] = [];
    for (const p of this.ports.values()) if (p.id !== from) out.push(p);
    return out;
  }
}
