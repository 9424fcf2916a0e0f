/**
 * The switch's own host on its subnet: an internal port with the gateway address that
 * answers ARP for it, ICMP echo (ping) to it, and DHCP (through {@link DhcpServer}).
 * It does not route: the gateway address exists so clients have a server and a router
 * to name, and so a ping shows the path works.
 * @module
 */

import {
  buildDhcp,
  DHCP_CLIENT_PORT,
  DHCP_SERVER_PORT,
  type DhcpConfig,
  DhcpServer,
  parseDhcp,
} from "./dhcp.ts";
import { parseMac, stableMac } from "./mac.ts";
import {
  BROADCAST_MAC,
  buildArp,
  buildEth,
  buildIpv4,
  buildUdpFrame,
  ETH_ARP,
  ETH_IPV4,
  icmpEchoReply,
  IP_ICMP,
  parseArp,
  parseEth,
  parseIpv4,
  parseUdp,
} from "./packet.ts";
import type { VirtualSwitch } from "./switch.ts";

/** Id of the gateway's port (not a subject token, so no bus port can take it). */
export const GATEWAY_PORT = "~gateway";

/** Counters of a gateway. */
export interface GatewayStats {
  arpReplies: number;
  icmpReplies: number;
  dhcpReplies: number;
  /** Frames for the gateway it could not use (bad checksums, unknown protocols). */
  ignored: number;
}

/** The gateway/DHCP responder of one switch. */
export class Gateway {
  readonly mac: Uint8Array;
  readonly dhcp: DhcpServer;
  readonly stats: GatewayStats = { arpReplies: 0, icmpReplies: 0, dhcpReplies: 0, ignored: 0 };

  /** Attaches a gateway with `cfg`'s address and DHCP settings to `sw`. */
  constructor(readonly sw: VirtualSwitch, readonly cfg: DhcpConfig) {
    this.dhcp = new DhcpServer(cfg);
    const mac = stableMac(`gateway:${sw.name}`);
    this.mac = parseMac(mac);
    sw.join(GATEWAY_PORT, mac, (frame) => {
      this.#receive(frame);
      return true;
    }, "internal");
  }

  #send(frame: Uint8Array): void {
    // Later, not from inside the switch's delivery loop that called us.
    queueMicrotask(() => this.sw.input(GATEWAY_PORT, frame));
  }

  #receive(frame: Uint8Array): void {
    const eth = parseEth(frame);
    if (!eth) return;
    const gw = this.cfg.gateway;
    if (eth.type === ETH_ARP) {
      const arp = parseArp(eth.payload);
      if (arp?.op !== 1 || arp.targetIp !== gw) return;
      this.stats.arpReplies++;
      this.#send(buildEth(
        arp.senderMac,
        this.mac,
        ETH_ARP,
        buildArp({
          op: 2,
          senderMac: this.mac,
          senderIp: gw,
          targetMac: arp.senderMac,
          targetIp: arp.senderIp,
        }),
      ));
      return;
    }
    if (eth.type !== ETH_IPV4) return;
    const ip = parseIpv4(eth.payload);
    if (!ip) {
      this.stats.ignored++;
      return;
    }
    if (ip.protocol === IP_ICMP && ip.dst === gw) {
      const reply = icmpEchoReply(ip.payload);
      if (!reply) {
        this.stats.ignored++;
        return;
      }
      this.stats.icmpReplies++;
      this.#send(buildEth(eth.src, this.mac, ETH_IPV4, buildIpv4(IP_ICMP, gw, ip.src, reply)));
      return;
    }
    const udp = parseUdp(ip);
    if (!udp || udp.dstPort !== DHCP_SERVER_PORT) return;
    if (ip.dst !== gw && ip.dst !== 0xffffffff) return;
    const msg = parseDhcp(udp.payload);
    if (!msg) {
      this.stats.ignored++;
      return;
    }
    const reply = this.dhcp.handle(msg);
    if (!reply) return;
    this.stats.dhcpReplies++;
    const dstMac = reply.to === 0xffffffff ? BROADCAST_MAC : eth.src.slice();
    this.#send(buildUdpFrame(
      dstMac,
      this.mac,
      gw,
      reply.to,
      DHCP_SERVER_PORT,
      DHCP_CLIENT_PORT,
      buildDhcp(reply.message),
    ));
  }
}
