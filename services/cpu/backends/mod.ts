/**
 * The CPU service's bus-backed device backends: virtio-blk requests to the disk service
 * (`BusBlockClient`), virtio-net frames to a switch port of the net service
 * (`BusNetClient`), and the UART's byte streams to the console service (`ConsoleBridge`).
 */

export { BusBlockClient, type BusBlockClientOptions } from "./bus_block_client.ts";
export { BusNetClient, type BusNetClientOptions } from "./bus_net_client.ts";
export { ConsoleBridge, type ConsoleBridgeOptions } from "./console_bridge.ts";
