/**
 * A DHCP server (RFC 2131/2132) for one switch's subnet: DISCOVER → OFFER, REQUEST →
 * ACK/NAK, RELEASE, DECLINE, INFORM. A MAC keeps its address (stable: the first probe
 * is a hash of the MAC, and bindings outlive leases), optionally across restarts through
 * a small JSON file. Messages are parsed and built here; framing is the gateway's job.
 * @module
 */

import { fnv1a, formatMac } from "./mac.ts";
import { formatIp, parseIp, putU16, putU32, u16, u32 } from "./packet.ts";

/** UDP port of the server. */
export const DHCP_SERVER_PORT = 67;
/** UDP port of the client. */
export const DHCP_CLIENT_PORT = 68;
const MAGIC = 0x63825363;
const FIXED = 240;

/** DHCP message types (option 53). */
export const DhcpType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

/** Option codes we read or write. */
export const DhcpOption = {
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS: 6,
  REQUESTED_IP: 50,
  LEASE_TIME: 51,
  MESSAGE_TYPE: 53,
  SERVER_ID: 54,
  RENEWAL_T1: 58,
  REBINDING_T2: 59,
  END: 255,
} as const;

/** A BOOTP/DHCP message (the fields we use). */
export interface DhcpMessage {
  /** 1 request (client), 2 reply (server). */
  op: number;
  xid: number;
  flags: number;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** Client hardware address (6 bytes). */
  chaddr: Uint8Array;
  /** Options by code (53 is the message type). */
  options: Map<number, Uint8Array>;
}

/** The message type (option 53), or 0. */
export function dhcpType(m: DhcpMessage): number {
  return m.options.get(DhcpOption.MESSAGE_TYPE)?.[0] ?? 0;
}

/** Parses a BOOTP/DHCP message; undefined unless Ethernet, magic cookie and options well formed. */
export function parseDhcp(b: Uint8Array): DhcpMessage | undefined {
  if (b.length < FIXED || b[1] !== 1 || b[2] !== 6 || u32(b, 236) !== MAGIC) return undefined;
  const options = new Map<number, Uint8Array>();
  let i = FIXED;
  while (i < b.length) {
    const code = b[i++];
    if (code === 0) continue;
    if (code === DhcpOption.END) break;
    if (i >= b.length) return undefined;
    const len = b[i++];
    if (i + len > b.length) return undefined;
    const prior = options.get(code);
    // RFC 3396: a repeated option is concatenated.
    const data = b.slice(i, i + len);
    options.set(code, prior ? new Uint8Array([...prior, ...data]) : data);
    i += len;
  }
  return {
    op: b[0],
    xid: u32(b, 4),
    flags: u16(b, 10),
    ciaddr: u32(b, 12),
    yiaddr: u32(b, 16),
    siaddr: u32(b, 20),
    giaddr: u32(b, 24),
    chaddr: b.slice(28, 34),
    options,
  };
}

/** Encodes a message (options in insertion order, then END, padded to 300 bytes). */
export function buildDhcp(m: DhcpMessage): Uint8Array {
  let optLen = 1;
  for (const v of m.options.values()) optLen += 2 + v.length;
  const b = new Uint8Array(Math.max(300, FIXED + optLen));
  b[0] = m.op;
  b[1] = 1;
  b[2] = 6;
  putU32(b, 4, m.xid);
  putU16(b, 10, m.flags);
  putU32(b, 12, m.ciaddr);
  putU32(b, 16, m.yiaddr);
  putU32(b, 20, m.siaddr);
  putU32(b, 24, m.giaddr);
  b.set(m.chaddr.subarray(0, 6), 28);
  putU32(b, 236, MAGIC);
  let i = FIXED;
  for (const [code, v] of m.options) {
    b[i++] = code;
    b[i++] = v.length;
    b.set(v, i);
    i += v.length;
  }
  b[i] = DhcpOption.END;
  return b;
}

/** Four bytes of a 32-bit number, for address and time options. */
export function ipBytes(...ips: number[]): Uint8Array {
  const b = new Uint8Array(4 * ips.length);
  ips.forEach((ip, i) => putU32(b, 4 * i, ip));
  return b;
}

/** Configuration of a {@link DhcpServer}. */
export interface DhcpConfig {
  /** Network address, e.g. parseIp("10.0.2.0"). */
  network: number;
  /** Prefix length, 8..30. */
  prefix: number;
  /** Router (option 3); also the server identifier (option 54). */
  gateway: number;
  /** DNS servers (option 6); default the gateway. */
  dns?: number[];
  /** Lease time in seconds; default 3600. */
  leaseSecs?: number;
  /** JSON file keeping MAC → address across restarts (optional). */
  leasesFile?: string;
  /** Clock in ms; default Date.now. */
  now?: () => number;
  /** One line per problem (unreadable lease file, exhausted pool). */
  log?: (line: string) => void;
}

/** Parses "10.0.2.0/24" into network and prefix; throws a RangeError on anything else. */
export function parseCidr(s: string): { network: number; prefix: number } {
  const [addr, bits, ...rest] = s.split("/");
  const ip = parseIp(addr ?? "");
  const prefix = Number(bits);
  if (ip === undefined || rest.length || !/^\d+$/.test(bits ?? "") || prefix < 8 || prefix > 30) {
    throw new RangeError(`subnet ${JSON.stringify(s)} is not a.b.c.d/8..30`);
  }
  const mask = maskOf(prefix);
  return { network: (ip & mask) >>> 0, prefix };
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

interface Binding {
  ip: number;
  /** Lease end (ms); 0: released or only offered. */
  expires: number;
}

/** A reply and where it goes: broadcast, or unicast to `to` (IP) at the client's MAC. */
export interface DhcpReply {
  message: DhcpMessage;
  /** Destination IP; 0xffffffff is broadcast. */
  to: number;
}

/** Leases of one subnet and the answers to client messages. */
export class DhcpServer {
  readonly mask: number;
  readonly leaseSecs: number;
  readonly dns: number[];
  readonly #bindings = new Map<string, Binding>();
  readonly #owner = new Map<number, string>();
  readonly #now: () => number;
  readonly #log: (line: string) => void;
  /** Replies sent, by message type name. */
  readonly counts: Record<string, number> = {};

  /** A server for `cfg`; loads the lease file if there is one. */
  constructor(readonly cfg: DhcpConfig) {
    this.mask = maskOf(cfg.prefix);
    if (((cfg.gateway & this.mask) >>> 0) !== cfg.network) {
      throw new RangeError(`gateway ${formatIp(cfg.gateway)} is outside the subnet`);
    }
    this.leaseSecs = cfg.leaseSecs ?? 3600;
    this.dns = cfg.dns ?? [cfg.gateway];
    this.#now = cfg.now ?? Date.now;
    this.#log = cfg.log ?? (() => {});
    this.#load();
  }

  /** The address bound to `mac` (colon form), if any. */
  addressOf(mac: string): string | undefined {
    const b = this.#bindings.get(mac.toLowerCase());
    return b ? formatIp(b.ip) : undefined;
  }

  /** The reply to a client message, or undefined when it gets none. */
  handle(m: DhcpMessage): DhcpReply | undefined {
    if (m.op !== 1) return undefined;
    const mac = formatMac(m.chaddr);
    const serverId = m.options.get(DhcpOption.SERVER_ID);
    const forOther = serverId?.length === 4 && u32(serverId, 0) !== this.cfg.gateway;
    switch (dhcpType(m)) {
      case DhcpType.DISCOVER: {
        const ip = this.#allocate(mac, this.#requested(m));
        if (ip === undefined) {
          this.#log(`dhcp: no free address for ${mac}`);
          return undefined;
        }
        return this.#reply(m, DhcpType.OFFER, ip);
      }
      case DhcpType.REQUEST: {
        // The client took another server's offer.
        if (forOther) return undefined;
        const want = this.#requested(m) ?? m.ciaddr;
        if (want !== 0 && this.#grantable(mac, want)) {
          this.#bind(mac, want, this.#now() + this.leaseSecs * 1000);
          return this.#reply(m, DhcpType.ACK, want);
        }
        return this.#nak(m);
      }
      case DhcpType.RELEASE: {
        const b = this.#bindings.get(mac);
        if (!forOther && b && b.ip === m.ciaddr) b.expires = 0;
        return undefined;
      }
      case DhcpType.DECLINE: {
        // Someone else uses the address: keep it away from every client.
        const ip = this.#requested(m);
        if (!forOther && ip !== undefined && this.#bindings.get(mac)?.ip === ip) {
          this.#bindings.delete(mac);
          this.#owner.set(ip, "declined");
        }
        return undefined;
      }
      case DhcpType.INFORM:
        return m.ciaddr === 0 ? undefined : this.#reply(m, DhcpType.ACK, 0);
      default:
        return undefined;
    }
  }

  #requested(m: DhcpMessage): number | undefined {
    const r = m.options.get(DhcpOption.REQUESTED_IP);
    return r?.length === 4 ? u32(r, 0) : undefined;
  }

  /** Whether `ip` is a host address of the pool (not network, broadcast or gateway). */
  #inPool(ip: number): boolean {
    const host = (ip & ~this.mask) >>> 0;
    return ((ip & this.mask) >>> 0) === this.cfg.network && host !== 0 &&
      host !== (~this.mask >>> 0) && ip !== this.cfg.gateway && !this.dns.includes(ip);
  }

  /** Whether `mac` may have `ip`: its own binding, or a pool address nobody holds. */
  #grantable(mac: string, ip: number): boolean {
    if (!this.#inPool(ip)) return false;
    const owner = this.#owner.get(ip);
    if (owner === undefined || owner === mac) return true;
    const b = this.#bindings.get(owner);
    return b !== undefined && b.expires !== 0 && b.expires < this.#now();
  }

  /** The address for `mac`: its binding, else the requested one if free, else a probe. */
  #allocate(mac: string, requested?: number): number | undefined {
    const b = this.#bindings.get(mac);
    if (b) return b.ip;
    if (requested !== undefined && this.#inPool(requested) && !this.#owner.has(requested)) {
      this.#bind(mac, requested, 0);
      return requested;
    }
    const size = (~this.mask >>> 0) + 1;
    const start = fnv1a(mac) % size;
    // First pass: addresses nobody ever held; second: addresses whose lease has ended.
    for (const steal of [false, true]) {
      for (let i = 0; i < size; i++) {
        const ip = (this.cfg.network + (start + i) % size) >>> 0;
        if (!this.#inPool(ip)) continue;
        const owner = this.#owner.get(ip);
        if (owner === undefined || (steal && this.#grantable(mac, ip))) {
          this.#bind(mac, ip, 0);
          return ip;
        }
      }
    }
    return undefined;
  }

  #bind(mac: string, ip: number, expires: number): void {
    const prior = this.#bindings.get(mac);
    if (prior && prior.ip !== ip) this.#owner.delete(prior.ip);
    const stolenFrom = this.#owner.get(ip);
    if (stolenFrom && stolenFrom !== mac) this.#bindings.delete(stolenFrom);
    this.#bindings.set(mac, { ip, expires });
    this.#owner.set(ip, mac);
    if (prior?.ip !== ip) this.#save();
  }

  #reply(m: DhcpMessage, type: number, yiaddr: number): DhcpReply {
    const options = new Map<number, Uint8Array>([
      [DhcpOption.MESSAGE_TYPE, new Uint8Array([type])],
      [DhcpOption.SERVER_ID, ipBytes(this.cfg.gateway)],
    ]);
    if (type !== DhcpType.ACK || yiaddr !== 0) {
      options.set(DhcpOption.LEASE_TIME, ipBytes(this.leaseSecs));
      options.set(DhcpOption.RENEWAL_T1, ipBytes(Math.floor(this.leaseSecs / 2)));
      options.set(DhcpOption.REBINDING_T2, ipBytes(Math.floor(this.leaseSecs * 7 / 8)));
    }
    options.set(DhcpOption.SUBNET_MASK, ipBytes(this.mask));
    options.set(DhcpOption.ROUTER, ipBytes(this.cfg.gateway));
    options.set(DhcpOption.DNS, ipBytes(...this.dns));
    this.#count(type);
    return {
      message: {
        op: 2,
        xid: m.xid,
        flags: m.flags,
        ciaddr: m.ciaddr,
        yiaddr,
        siaddr: 0,
        giaddr: m.giaddr,
        chaddr: m.chaddr,
        options,
      },
      // A client with an address (renewing, INFORM) is reachable there; others only by broadcast.
      to: m.ciaddr !== 0 ? m.ciaddr : 0xffffffff,
    };
  }

  #nak(m: DhcpMessage): DhcpReply {
    this.#count(DhcpType.NAK);
    return {
      message: {
        op: 2,
        xid: m.xid,
        flags: m.flags,
        ciaddr: 0,
        yiaddr: 0,
        siaddr: 0,
        giaddr: m.giaddr,
        chaddr: m.chaddr,
        options: new Map([
          [DhcpOption.MESSAGE_TYPE, new Uint8Array([DhcpType.NAK])],
          [DhcpOption.SERVER_ID, ipBytes(this.cfg.gateway)],
        ]),
      },
      to: 0xffffffff,
    };
  }

  #count(type: number): void {
    const name = Object.entries(DhcpType).find(([, v]) => v === type)?.[0] ?? String(type);
    this.counts[name] = (this.counts[name] ?? 0) + 1;
  }

  #load(): void {
    const file = this.cfg.leasesFile;
    if (!file) return;
    let text: string;
    try {
      text = Deno.readTextFileSync(file);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) this.#log(`dhcp: ${file}: ${(e as Error).message}`);
      return;
    }
    try {
      const data = JSON.parse(text) as { leases?: Record<string, string> };
      for (const [mac, addr] of Object.entries(data.leases ?? {})) {
        const ip = parseIp(String(addr));
        if (ip === undefined || !this.#inPool(ip) || this.#owner.has(ip)) continue;
        this.#bindings.set(mac.toLowerCase(), { ip, expires: 0 });
        this.#owner.set(ip, mac.toLowerCase());
      }
    } catch (e) {
      this.#log(`dhcp: ${file}: not a lease file (${(e as Error).message}); starting empty`);
    }
  }

  #save(): void {
    const file = this.cfg.leasesFile;
    if (!file) return;
    const leases: Record<string, string> = {};
    for (const [mac, b] of this.#bindings) leases[mac] = formatIp(b.ip);
    try {
      // Write then rename, so a crash never leaves half a file.
      Deno.writeTextFileSync(`${file}.tmp`, JSON.stringify({ leases }, null, 1) + "\n");
      Deno.renameSync(`${file}.tmp`, file);
    } catch (e) {
      this.#log(`dhcp: cannot save ${file}: ${(e as Error).message}`);
    }
  }
}
