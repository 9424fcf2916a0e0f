// Bus costs on one machine: typed request/reply round trips and publishes through a
// real (embedded) nats-server, client and service in one process.
import { block, connect, consoleMsgs, consoleSubject } from "./mod.ts";

const saved = Deno.env.get("NATS_URL");
const bus = await connect({ name: "bus-bench", url: saved });
const disk = new Uint8Array(1 << 20);
const svc = await bus.serve({
  vm: "bench",
  device: "disk0",
  name: "vmesh-bench-disk",
  version: "0.1.0",
  ops: block.ops,
  handlers: {
    info: () => ({ sizeBytes: disk.length, sectorSize: 512, readOnly: false, discard: false }),
    read: ({ offset, length }) => ({ data: disk.subarray(offset, offset + length) }),
    write: ({ offset, data }) => {
      disk.set(data, offset);
      return { written: data.length };
    },
    flush: () => ({}),
    discard: () => ({}),
  },
});
const client = bus.client({ vm: "bench", device: "disk0" }, block.ops);
const page = new Uint8Array(4096).fill(7);
let received = 0;
bus.subscribe(consoleMsgs.byteBatch, consoleSubject("bench", "out"), () => {
  received++;
});

Deno.bench("bus: read 4 KiB (request/reply round trip)", async () => {
  await client.call("read", { offset: 4096, length: 4096 });
});

Deno.bench("bus: write 4 KiB (request/reply, replay cache)", async () => {
  await client.call("write", { offset: 8192, data: page });
});

Deno.bench("bus: 64 concurrent 4 KiB reads", async () => {
  await Promise.all(
    Array.from({ length: 64 }, (_, i) => client.call("read", { offset: i * 4096, length: 4096 })),
  );
});

Deno.bench("bus: publish a 64-byte console batch", () => {
  bus.publish(consoleMsgs.byteBatch, consoleSubject("bench", "out"), {
    seq: received,
    data: page.subarray(0, 64),
  });
});

globalThis.addEventListener("unload", () => {
  void svc.stop();
  void bus.close();
});
