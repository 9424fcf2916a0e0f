/**
 * The disks of a `vmesh boot --accel kvm` VM, as for RISC-V guests: a private nats-server, one
 * disk service process per `--drive` (services/disk, the same Block API), and a virtio-blk
 * device per disk whose backend is a BusBlockClient on that bus.
 */
import { type Bus, connect, type EmbeddedNats, startEmbeddedNats } from "@vmesh/bus";
import { ServiceProcess } from "../../../cli/service_process.ts";
import { BusBlockClient } from "../backends/bus_block_client.ts";
import { VirtioBlk } from "../virtio/blk.ts";

/** Running disk services and their virtio-blk devices. */
export interface BusDrives {
  devices: VirtioBlk[];
  /** Stops the disk services, then the bus (each disk flushed by its service on SIGTERM). */
  close(): Promise<void>;
}

/** Starts the bus and one disk service per image (`vm` names the VM's subjects). */
export async function startBusDrives(vm: string, images: string[]): Promise<BusDrives> {
  const nats: EmbeddedNats = await startEmbeddedNats();
  const procs: ServiceProcess[] = [];
  let bus: Bus | undefined;
  const close = async () => {
    for (const p of procs) await p.stop();
    await bus?.close();
    await nats.stop();
  };
  try {
    bus = await connect({ url: nats.url, name: `vmesh-kvm-${vm}`, log: () => {} });
    const devices: VirtioBlk[] = [];
    for (const [i, image] of images.entries()) {
      const device = `disk${i}`;
      let ready: () => void = () => {};
      const up = new Promise<void>((r) => ready = r);
      const p = new ServiceProcess({
        label: `vmesh-disk ${device}`,
        service: "disk",
        args: ["--vm", vm, "--device", device, "--image", image],
        natsUrl: nats.url,
        stdin: "null",
        stdout: "null",
        onLine: (line) => line.includes(" ready: ") && ready(),
      });
      procs.push(p);
      const code = await Promise.race([up.then(() => undefined), p.exited]);
      if (code !== undefined) {
        throw new Error(`disk service for ${image} exited with ${code}: ${p.tail.join(" | ")}`);
      }
      devices.push(await VirtioBlk.open(new BusBlockClient(bus, { vm, device })));
    }
    return { devices, close };
  } catch (e) {
    await close();
    throw e;
  }
}
