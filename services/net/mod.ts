/**
 * @vmesh/net — the virtual L2 switch service VMs' virtio-net ports join.
 *
 * - {@link VirtualSwitch}: ports and the forwarding decision (`hub`, `echo`).
 * - {@link SwitchService}: the switch on the bus (join/leave ops, frame forwarding).
 * @module
 */

export { isMac, newPort, type Port } from "./port.ts";
export { MIN_FRAME, type SwitchMode, VirtualSwitch } from "./switch.ts";
export {
  MAX_CONTROL_BYTES,
  SERVICE_NAME,
  SwitchService,
  type SwitchServiceOptions,
} from "./switch_service.ts";
