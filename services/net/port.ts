/**
 * A switch port: the attachment point of one VM's virtio-net (or, later, a host uplink).
 * @module
 */

/** "52:54:00:12:34:56": six lowercase or uppercase hex pairs. */
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Whether `mac` is a MAC address in colon form. */
export function isMac(mac: string): boolean {
  return MAC.test(mac);
}

/** One port of a switch, with its counters (plain data, so it can be saved). */
export interface Port {
  /** The port id: a subject token, the `<port>` in `vmesh.net.<switch>.port.<port>.*`. */
  id: string;
  /** The MAC address the VM announced at join. */
  mac: string;
  /** Frames received from the port (its tx subject). */
  rxFrames: number;
  /** Frames delivered to the port (its rx subject). */
  txFrames: number;
  /** Sequence number of the next frame delivered to the port. */
  nextSeq: number;
}

/** A new port with zeroed counters. */
export function newPort(id: string, mac: string): Port {
  return { id, mac: mac.toLowerCase(), rxFrames: 0, txFrames: 0, nextSeq: 0 };
}
