/**
 * A switch port: the attachment point of one VM's virtio-net (over the bus), a host TAP
 * uplink, or one of the switch's own responders (DHCP/gateway).
 * @module
 */

export { isMac } from "./mac.ts";

/**
 * Where a port's frames go. Returns false when the port cannot take the frame now (it
 * stays queued; the owner calls `VirtualSwitch.resume` when the port is writable again).
 */
export type PortSink = (frame: Uint8Array) => boolean;

/** What is behind a port: a VM over the bus, a host uplink, or a responder of the switch. */
export type PortKind = "bus" | "uplink" | "internal";

/** One port of a switch, with its counters (plain data, so it can be saved). */
export interface Port {
  /** The port id: for bus ports the `<port>` in `vmesh.net.<switch>.port.<port>.*`. */
  id: string;
  /** The MAC address the port announced at join ("" for an uplink: many MACs behind it). */
  mac: string;
  kind: PortKind;
  /** Frames and bytes received from the port (its tx subject) and accepted. */
  rxFrames: number;
  rxBytes: number;
  /** Frames and bytes delivered to the port (its rx subject). */
  txFrames: number;
  txBytes: number;
  /** Frames for this port dropped because its output queue was full. */
  txDropped: number;
  /** Sequence number of the next frame delivered to the port. */
  nextSeq: number;
  /** When the port last joined or sent a frame (ms, the switch's clock). */
  lastSeen: number;
}

/** A new port with zeroed counters. */
export function newPort(id: string, mac: string, kind: PortKind = "bus", now = 0): Port {
  return {
    id,
    mac: mac.toLowerCase(),
    kind,
    rxFrames: 0,
    rxBytes: 0,
    txFrames: 0,
    txBytes: 0,
    txDropped: 0,
    nextSeq: 0,
    lastSeen: now,
  };
}
