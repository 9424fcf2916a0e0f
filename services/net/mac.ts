/**
 * MAC addresses: the colon form ports announce, the 48-bit number the forwarding table
 * keys on, and {@link stableMac}, the address a VM's NIC gets when none is given.
 * @module
 */

/** "52:54:00:12:34:56": six lowercase or uppercase hex pairs. */
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/** Whether `mac` is a MAC address in colon form. */
export function isMac(mac: string): boolean {
  return MAC.test(mac);
}

/** The six bytes of "52:54:00:12:34:56"; throws a RangeError on anything else. */
export function parseMac(mac: string): Uint8Array {
  if (!isMac(mac)) throw new RangeError(`bad MAC address ${JSON.stringify(mac)}`);
  return Uint8Array.from(mac.split(":"), (h) => parseInt(h, 16));
}

/** Colon form (lowercase) of the six bytes at `off` in `b`. */
export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i].toString(16).padStart(2, "0"));
  return out.join(":");
}

/** The six bytes at `off` as one number (exact: 48 bits fit a double), the table key. */
export function macKey(b: Uint8Array, off = 0): number {
  return b[off] * 2 ** 40 + b[off + 1] * 2 ** 32 +
    ((b[off + 2] << 24 | b[off + 3] << 16 | b[off + 4] << 8 | b[off + 5]) >>> 0);
}

/** Whether the address at `off` is a group (broadcast or multicast) address: I/G bit set. */
export function isGroupMac(b: Uint8Array, off = 0): boolean {
  return (b[off] & 1) === 1;
}

/** FNV-1a, 32 bits: a small stable hash (the same on every host and run). */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(s)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/**
 * The MAC a VM's NIC number `nicIndex` gets when none is configured: QEMU's locally
 * administered prefix 52:54:00 and three bytes from a hash of the VM id and the index,
 * so the same VM keeps its address (and its DHCP lease) across restarts and hosts.
 */
export function stableMac(vmId: string, nicIndex = 0): string {
  const h = fnv1a(`${vmId}/${nicIndex}`);
  return formatMac(new Uint8Array([0x52, 0x54, 0x00, h >>> 16 & 0xff, h >>> 8 & 0xff, h & 0xff]));
}
