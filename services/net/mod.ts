/**
 * @vmesh/net — virtual L2 switches VMs' virtio-net ports join, with a gateway/DHCP
 * server per switch and host TAP uplinks.
 *
 * - {@link stableMac}: the MAC a VM's NIC gets when none is configured.
 * - {@link VirtualSwitch}: ports, MAC learning, flooding, aging, per-port queues.
 * - {@link SwitchService}: the switch on the bus (join/leave ops, frame forwarding).
 * - {@link Gateway} / {@link DhcpServer}: ARP, ping and DHCP for the switch's subnet.
 * - {@link TapPort}: a host TAP interface as a port.
 * @module
 */

export { formatMac, isGroupMac, isMac, parseMac, stableMac } from "./mac.ts";
export { newPort, type Port, type PortKind, type PortSink } from "./port.ts";
export {
  DROP_REASONS,
  type DropReason,
  MIN_FRAME,
  SWITCH_MODES,
  type SwitchMode,
  type SwitchOptions,
  type SwitchStats,
  VirtualSwitch,
} from "./switch.ts";
export {
  MAX_CONTROL_BYTES,
  SERVICE_NAME,
  SwitchService,
  type SwitchServiceOptions,
} from "./switch_service.ts";
export {
  buildDhcp,
  type DhcpConfig,
  type DhcpMessage,
  DhcpOption,
  type DhcpReply,
  DhcpServer,
  DhcpType,
  parseCidr,
  parseDhcp,
} from "./dhcp.ts";
export { Gateway, GATEWAY_PORT, type GatewayStats } from "./gateway.ts";
export { TapError, type TapOptions, TapPort } from "./tap.ts";
export { registerSwitchMetrics } from "./metrics.ts";
export { type NetConfig, parseNetArgs, type SwitchConfig, type UplinkConfig } from "./config.ts";
export { type UdpEndpoints, UdpPort, UdpUplinkError } from "./udp.ts";
