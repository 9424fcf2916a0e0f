// Disk costs on one machine: backend calls direct and through the bus (a real embedded
// nats-server, client and service in one process), raw file, COW overlay and qcow2 overlay.
import { block, connect } from "@vmesh/bus";
import { serveBlock } from "./block_service.ts";
import { CowOverlay } from "./cow_overlay.ts";
import { openImage } from "./image_open.ts";
import { createQcow2 } from "./qcow2_create.ts";
import { RawFile } from "./raw_file.ts";

const dir = await Deno.makeTempDir({ prefix: "vmesh-disk-bench-" });
const size = 64 << 20;
await RawFile.create(`${dir}/raw.img`, size);
await Deno.writeFile(`${dir}/base.img`, new Uint8Array(size).fill(1));
await CowOverlay.create(`${dir}/a.cow`, `${dir}/base.img`);
const raw = await RawFile.open(`${dir}/raw.img`);
const cow = await CowOverlay.open(`${dir}/a.cow`);
await createQcow2(`${dir}/a.qcow2`, {
  backingFile: `${dir}/base.img`,
  backingFormat: "raw",
  backingSize: size,
});
const qcow2 = await openImage(`${dir}/a.qcow2`);
const bus = await connect({ name: "disk-bench" });
const limits = { maxTransfer: 512 * 1024, requireAlignment: true };
const services = [
  await serveBlock(bus, raw, { vm: "bench", device: "raw0", version: "0.1.0", limits }),
  await serveBlock(bus, cow, { vm: "bench", device: "cow0", version: "0.1.0", limits }),
  await serveBlock(bus, qcow2, { vm: "bench", device: "qcow0", version: "0.1.0", limits }),
];
const rawClient = bus.client({ vm: "bench", device: "raw0" }, block.ops);
const cowClient = bus.client({ vm: "bench", device: "cow0" }, block.ops);
const qcowClient = bus.client({ vm: "bench", device: "qcow0" }, block.ops);
const page = new Uint8Array(4096).fill(7);
let n = 0;
// Sequential 4 KiB offsets over the first 16 MiB, so COW writes hit fresh clusters too.
const next = () => (n++ % 4096) * 4096;

Deno.bench("raw direct: read 4 KiB", { group: "read" }, async () => {
  await raw.read(next(), 4096);
});
Deno.bench("raw via bus: read 4 KiB", { group: "read", baseline: true }, async () => {
  await rawClient.call("read", { offset: next(), length: 4096 });
});
Deno.bench("cow via bus: read 4 KiB", { group: "read" }, async () => {
  await cowClient.call("read", { offset: next(), length: 4096 });
});
Deno.bench("qcow2 via bus: read 4 KiB", { group: "read" }, async () => {
  await qcowClient.call("read", { offset: next(), length: 4096 });
});
Deno.bench("raw via bus: write 4 KiB", { group: "write", baseline: true }, async () => {
  await rawClient.call("write", { offset: next(), data: page });
});
Deno.bench("cow via bus: write 4 KiB", { group: "write" }, async () => {
  await cowClient.call("write", { offset: next(), data: page });
});
Deno.bench("qcow2 via bus: write 4 KiB", { group: "write" }, async () => {
  await qcowClient.call("write", { offset: next(), data: page });
});
Deno.bench("raw via bus: read 128 KiB", async () => {
  await rawClient.call("read", { offset: (n++ % 128) * 131072, length: 131072 });
});

globalThis.addEventListener("unload", () => {
  for (const s of services) void s.stop();
  void bus.close();
  raw.close();
  cow.close();
  qcow2.close();
  Deno.removeSync(dir, { recursive: true });
});
