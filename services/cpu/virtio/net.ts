/**
 * virtio-net front-end (virtio 1.2, section 5.1): one receive and one transmit queue, a MAC
 * address and a link status. Transmitted frames go to a `NetBackendClient` (a port on the
 * net service's virtual switch in production); received frames land in the buffers the
 * driver posted, or are dropped and counted when there is none.
 */

import {
  readConfigBytes,
  type VirtioDevice,
  VirtioDeviceId,
  VirtioFeature,
  type VirtioHost,
} from "./device.ts";
import { DescriptorChain } from "./virtqueue.ts";
import {
  completeChecksum,
  parseNetHdr,
  segmentTcpV4,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
} from "./net_offload.ts";

/** The seam to the network backend. */
export interface NetBackendClient {
  /** Sends one Ethernet frame (destination MAC first, no FCS); fire and forget. */
  send(frame: Uint8Array): void;
  /**
   * Sends the frames of one tx kick together, in order (optional: without it each goes
   * through `send`). The backend may put them in one bus message.
   */
  sendMany?(frames: Uint8Array[]): void;
}

/** Feature bits of the network device. */
export const VirtioNetFeature = {
  /** The device completes checksums the driver leaves to it (net_offload.ts). */
  CSUM: 0,
  MAC: 5,
  /** The device segments TCP/IPv4 super-packets (net_offload.ts). */
  HOST_TSO4: 11,
  STATUS: 16,
} as const;

/** Config status bit: the link is up. */
export const VIRTIO_NET_S_LINK_UP = 1;
/** Size of struct virtio_net_hdr when VERSION_1 is negotiated. */
export const VIRTIO_NET_HDR_SIZE = 12;
/**
 * Size of the legacy struct virtio_net_hdr (no num_buffers): the header a driver that did not
 * negotiate VERSION_1 (nor MRG_RXBUF, which is not offered) uses, as QEMU's guest_hdr_len.
 */
export const VIRTIO_NET_LEGACY_HDR_SIZE = 10;
/** Largest frame accepted from the guest or the backend (64 KiB plus an Ethernet header). */
export const MAX_FRAME = 65536 + 14;

/**
 * Received frames held while the guest has no rx buffer posted (as QEMU stops reading its tap
 * and the kernel queues up to txqueuelen 1000): a burst larger than the ring waits instead of
 * being dropped (a drop costs a TCP retransmit timeout). Beyond this many, drop-tail.
 */
export const RX_BACKLOG_FRAMES = 1024;

/** Queue indices. */
const RX = 0;
const TX = 1;

/** Traffic counters. */
export interface VirtioNetStats {
  rxFrames: number;
  rxDropped: number;
  txFrames: number;
  txDropped: number;
}

/** Options of a virtio-net device. */
export interface VirtioNetOptions {
  /** MAC address, "52:54:00:12:34:56" or 6 bytes. */
  mac: string | Uint8Array;
  /** Queue size until the driver picks one, 256 by default (as QEMU). */
  queueSize?: number;
}

/** Device state for snapshots. */
export interface VirtioNetState {
  linkUp: boolean;
  /** The MAC as the guest sees it (a legacy driver may have written it); absent in old states. */
  mac?: number[];
  stats: VirtioNetStats;
  /** Received frames not yet in a guest buffer (absent when none). */
  backlog?: number[][];
  /**
   * A {@link VirtioNet.changeMac} bounce under way (absent when none): the link is down and
   * comes up at the driver's next status read (`seen` false) or after `maxDownMs`.
   */
  bounce?: { maxDownMs: number };
}

/** How long {@link VirtioNet.changeMac} keeps the link down at most by default. */
export const MAC_CHANGE_MAX_DOWN_MS = 2000;

/** Parses "52:54:00:12:34:56"; throws a RangeError on anything else. */
export function parseMac(mac: string): Uint8Array {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new RangeError(`bad MAC address "${mac}"`);
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

/** The virtio network device. */
export class VirtioNet implements VirtioDevice {
  readonly deviceId = VirtioDeviceId.NET;
  // Transmit offloads are done here, in the host, not in the emulated guest: frames leave
  // the device complete, so nothing past it needs to know about offloads.
  readonly features: readonly [number, number] = [
    (1 << VirtioNetFeature.CSUM) | (1 << VirtioNetFeature.MAC) |
    (1 << VirtioNetFeature.HOST_TSO4) | (1 << VirtioNetFeature.STATUS),
    0,
  ];
  readonly numQueues = 2;
  readonly queueSize: number;
  /** Traffic counters. */
  stats: VirtioNetStats = { rxFrames: 0, rxDropped: 0, txFrames: 0, txDropped: 0 };
  /** Backend frames go to; replaceable (e.g. after reconnecting to the switch). */
  backend: NetBackendClient;

  private host!: VirtioHost;
  private readonly config = new Uint8Array(8);
  private readonly chain = new DescriptorChain();
  private readonly rxHdr = new Uint8Array(VIRTIO_NET_HDR_SIZE);
  private readonly txHdr = new Uint8Array(VIRTIO_NET_LEGACY_HDR_SIZE);
  /** Frames waiting for an rx buffer, oldest first (see RX_BACKLOG_FRAMES). */
  private backlog: Uint8Array[] = [];
  /** Frames of the tx kick being drained (reused). */
  private readonly txBatch: Uint8Array[] = [];
  /** A MAC change's link bounce: the link is down until the driver reads the status. */
  #bounce: { maxDownMs: number; timer: number } | undefined;

  constructor(backend: NetBackendClient, options: VirtioNetOptions) {
    this.backend = backend;
    this.queueSize = options.queueSize ?? 256;
    const mac = typeof options.mac === "string" ? parseMac(options.mac) : options.mac;
    if (mac.length !== 6) throw new RangeError(`MAC address must be 6 bytes`);
    this.config.set(mac, 0);
    this.config[6] = VIRTIO_NET_S_LINK_UP;
    this.rxHdr[10] = 1; // num_buffers: one buffer per frame without MRG_RXBUF
  }

  /** The MAC address. */
  get mac(): Uint8Array {
    return this.config.slice(0, 6);
  }

  /** Link status as the guest sees it. */
  get linkUp(): boolean {
    return (this.config[6] & VIRTIO_NET_S_LINK_UP) !== 0;
  }

  /** Changes the link status and tells the driver (config change interrupt). */
  setLink(up: boolean): void {
    this.#endBounce();
    if (up === this.linkUp) return;
    this.config[6] = up ? VIRTIO_NET_S_LINK_UP : 0;
    this.host.configChanged();
  }

  /**
   * Gives the device a new MAC in config space (a clone's, after a restore). A running driver
   * is told by a link bounce: VIRTIO_NET_S_LINK_UP is cleared with a config change interrupt,
   * and set again, with another, right after the driver has read the status (so it saw the
   * link down), or after `maxDownMs` if it never reads it. A driver reads the MAC only when it
   * probes the device (Linux 6.1 does), so the bounce is its cue to do that again (the vmesh
   * guest's /init unbinds and binds the device). Without a running driver (or with the link
   * down already) only the MAC changes; the driver reads it when it sets the device up.
   */
  changeMac(mac: string | Uint8Array, maxDownMs = MAC_CHANGE_MAX_DOWN_MS): void {
    const bytes = typeof mac === "string" ? parseMac(mac) : mac;
    if (bytes.length !== 6) throw new RangeError(`MAC address must be 6 bytes`);
    if (!(maxDownMs >= 0 && Number.isFinite(maxDownMs))) {
      throw new RangeError(`maxDownMs must be a finite number >= 0, got ${maxDownMs}`);
    }
    this.config.set(bytes, 0);
    if (!this.host.active || (!this.linkUp && !this.#bounce)) {
      this.host.configChanged();
      return;
    }
    this.#endBounce();
    this.config[6] = 0;
    this.#armBounce(maxDownMs);
    this.host.configChanged();
  }

  /** True while a {@link changeMac} bounce holds the link down. */
  get bouncing(): boolean {
    return this.#bounce !== undefined;
  }

  #armBounce(maxDownMs: number): void {
    // Deno's timer ids are numbers (the Node types in scope say Timeout); unref'd, so a
    // bounce never keeps a process alive.
    const timer: number = Number(setTimeout(() => {
      if (this.#bounce?.timer === timer) this.#linkBack();
    }, maxDownMs));
    Deno.unrefTimer(timer);
    this.#bounce = { maxDownMs, timer };
  }

  #endBounce(): void {
    if (!this.#bounce) return;
    clearTimeout(this.#bounce.timer);
    this.#bounce = undefined;
  }

  /** The end of a bounce: the link is up again and the driver is told. */
  #linkBack(): void {
    this.#endBounce();
    this.config[6] = VIRTIO_NET_S_LINK_UP;
    this.host.configChanged();
  }

  /** Called by the transport. */
  attach(host: VirtioHost): void {
    this.host = host;
  }

  /**
   * struct virtio_net_config: mac[6], le16 status. A read of the status during a
   * {@link changeMac} bounce answers "down" and ends the bounce (the link is up again, with a
   * config change interrupt).
   */
  readConfig(offset: number, size: 1 | 2 | 4): number {
    const v = readConfigBytes(this.config, offset, size);
    if (this.#bounce && offset <= 6 && offset + size > 6) this.#linkBack();
    return v;
  }

  /**
   * The MAC bytes are writable by a driver without VERSION_1 (legacy drivers set the MAC
   * this way; QEMU's virtio_net_set_config allows it when neither VERSION_1 nor
   * CTRL_MAC_ADDR is negotiated); otherwise config space is read-only.
   */
  writeConfig(offset: number, size: 1 | 2 | 4, value: number): void {
    if (this.host.hasFeature(VirtioFeature.VERSION_1)) return;
    for (let i = 0; i < size; i++) {
      if (offset + i < 6) this.config[offset + i] = (value >>> (8 * i)) & 0xff;
    }
  }

  /** Header bytes before each frame: 12 with VERSION_1, the legacy 10 without. */
  get headerSize(): number {
    return this.host.hasFeature(VirtioFeature.VERSION_1)
      ? VIRTIO_NET_HDR_SIZE
      : VIRTIO_NET_LEGACY_HDR_SIZE;
  }

  /**
   * Transmits what the driver queued (all of it, one used-buffer interrupt); an rx
   * notification means new buffers: frames waiting in the backlog go in.
   */
  queueNotify(index: number): void {
    if (index === RX) {
      if (this.backlog.length) this.#drainBacklog();
      return;
    }
    if (index !== TX) return;
    const q = this.host.queue(TX);
    const chain = this.chain;
    const mem = this.host.memory;
    const hdr = this.headerSize;
    const batch = this.txBatch;
    let pushed = false;
    while (q.pop(chain)) {
      const n = chain.readableBytes - hdr;
      if (n < 14 || n > MAX_FRAME || !this.linkUp) this.stats.txDropped++;
      else {
        const frame = new Uint8Array(n);
        chain.read(mem, hdr, frame);
        chain.read(mem, 0, this.txHdr);
        this.#offloaded(frame, batch);
      }
      q.push(chain.head, 0);
      pushed = true;
    }
    if (batch.length) this.#transmit(batch);
    if (pushed) this.host.signalUsed(TX);
  }

  /** Queues `frame` (or its TSO segments) with what the header asked of the device done. */
  #offloaded(frame: Uint8Array, batch: Uint8Array[]): void {
    const h = parseNetHdr(this.txHdr);
    const gso = h.gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
    if (gso === VIRTIO_NET_HDR_GSO_TCPV4 && this.host.hasFeature(VirtioNetFeature.HOST_TSO4)) {
      const segs = segmentTcpV4(frame, h.gsoSize);
      if (segs) batch.push(...segs);
      else this.stats.txDropped++;
      return;
    }
    if (gso !== VIRTIO_NET_HDR_GSO_NONE) {
      // A GSO type that was not negotiated: as QEMU, the frame is not sent.
      this.stats.txDropped++;
      return;
    }
    if (
      (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && this.host.hasFeature(VirtioNetFeature.CSUM) &&
      !completeChecksum(frame, h.csumStart, h.csumOffset)
    ) {
      this.stats.txDropped++;
      return;
    }
    batch.push(frame);
  }

  #transmit(batch: Uint8Array[]): void {
    const backend = this.backend;
    try {
      if (backend.sendMany) {
        backend.sendMany(batch);
        this.stats.txFrames += batch.length;
      } else {
        for (const f of batch) {
          try {
            backend.send(f);
            this.stats.txFrames++;
          } catch {
            this.stats.txDropped++;
          }
        }
      }
    } catch {
      this.stats.txDropped += batch.length;
    }
    batch.length = 0;
  }

  /**
   * Takes one frame from the backend: into the next posted rx buffer, or into the backlog
   * while the guest has none posted (delivered when it posts some). Returns false (and counts
   * a drop) when the device is not running, the link is down, the frame is shorter than an
   * Ethernet header or longer than MAX_FRAME, the buffer is too small, or the backlog is full.
   */
  receive(frame: Uint8Array): boolean {
    const host = this.host;
    if (!host.active || !this.linkUp || frame.length < 14 || frame.length > MAX_FRAME) {
      this.stats.rxDropped++;
      return false;
    }
    if (this.backlog.length) {
      // Order: older frames first; the new one waits behind them.
      this.#drainBacklog();
      if (this.backlog.length) return this.#hold(frame);
    }
    const r = this.#place(frame);
    if (r === "full") return this.#hold(frame);
    if (r === "delivered") host.signalUsed(RX);
    return r === "delivered";
  }

  /** Frames waiting for an rx buffer. */
  get backlogged(): number {
    return this.backlog.length;
  }

  #hold(frame: Uint8Array): boolean {
    if (this.backlog.length >= RX_BACKLOG_FRAMES) {
      this.stats.rxDropped++;
      return false;
    }
    this.backlog.push(frame);
    return true;
  }

  /** Moves backlogged frames into posted buffers, one interrupt for all of them. */
  #drainBacklog(): void {
    const host = this.host;
    if (!host.active || !this.linkUp) return;
    const backlog = this.backlog;
    let i = 0, delivered = false;
    while (i < backlog.length) {
      const r = this.#place(backlog[i]);
      if (r === "full") break;
      if (r === "delivered") delivered = true;
      i++;
    }
    if (i) backlog.splice(0, i);
    if (delivered) host.signalUsed(RX);
  }

  /** Writes one frame into the next rx buffer: "full" when none is posted. */
  #place(frame: Uint8Array): "delivered" | "dropped" | "full" {
    const host = this.host;
    const q = host.queue(RX);
    const chain = this.chain;
    if (!q.pop(chain)) return "full";
    const hdr = this.headerSize;
    const need = hdr + frame.length;
    if (chain.writableBytes < need) {
      q.unpop();
      this.stats.rxDropped++;
      return "dropped";
    }
    chain.write(host.memory, 0, this.rxHdr.subarray(0, hdr));
    chain.write(host.memory, hdr, frame);
    q.push(chain.head, need);
    this.stats.rxFrames++;
    return "delivered";
  }

  /**
   * Backlogged frames are dropped (the driver's buffers are gone); counters survive. A
   * {@link changeMac} bounce ends with the link up (the next driver reads it at probe).
   */
  reset(): void {
    if (this.#bounce) {
      this.#endBounce();
      this.config[6] = VIRTIO_NET_S_LINK_UP;
    }
    this.stats.rxDropped += this.backlog.length;
    this.backlog = [];
  }

  /** Link status, counters and backlogged frames. */
  save(): VirtioNetState {
    const s: VirtioNetState = {
      linkUp: this.linkUp,
      mac: [...this.config.subarray(0, 6)],
      stats: { ...this.stats },
    };
    if (this.backlog.length) s.backlog = this.backlog.map((f) => [...f]);
    if (this.#bounce) s.bounce = { maxDownMs: this.#bounce.maxDownMs };
    return s;
  }

  /** Restores `save()` output. */
  load(state: unknown): void {
    const s = state as VirtioNetState | undefined;
    this.config[6] = s?.linkUp === false ? 0 : VIRTIO_NET_S_LINK_UP;
    if (Array.isArray(s?.mac) && s.mac.length === 6) this.config.set(s.mac.map((b) => b & 0xff), 0);
    this.stats = { rxFrames: 0, rxDropped: 0, txFrames: 0, txDropped: 0, ...s?.stats };
    this.backlog = Array.isArray(s?.backlog)
      ? s.backlog.slice(0, RX_BACKLOG_FRAMES).map((f) => Uint8Array.from(f))
      : [];
    this.#endBounce();
    // A bounce under way goes on: the link stays down until the next status read (or the time).
    const down = s?.bounce?.maxDownMs;
    if (this.config[6] === 0 && typeof down === "number" && down >= 0 && Number.isFinite(down)) {
      this.#armBounce(down);
    }
  }
}
