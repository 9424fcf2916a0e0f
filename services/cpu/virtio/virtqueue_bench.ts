/**
 * Virtqueue hot path: one 3-descriptor chain (header, data, status) popped and pushed per
 * iteration, as a block request would be, and a 1-descriptor rng request end to end.
 */
import { GuestMemory } from "../guest_memory.ts";
import { VirtioMmioReg as R, VirtioMmioTransport } from "./mmio_transport.ts";
import { VirtioRng } from "./rng.ts";
import { TestDriver } from "./test_driver.ts";
import { DescriptorChain } from "./virtqueue.ts";

const mem = new GuestMemory(1 << 20);
const rng = new VirtioRng({ entropy: () => {}, queueSize: 256 });
const t = new VirtioMmioTransport(mem, rng, () => {});
const d = new TestDriver(mem, t);
d.init({ size: 256 });
const q = t.queue(0);
const l = d.queues[0];
const bufs = [
  { addr: d.alloc(16), len: 16 },
  { addr: d.alloc(4096), len: 4096, write: true },
  { addr: d.alloc(1), len: 1, write: true },
];
// Fill every descriptor slot with the same chain shape once.
for (let i = 0; i < 256 / 4; i++) d.addChain(0, bufs);
const chain = new DescriptorChain();

Deno.bench("virtqueue: pop + push of a 3-descriptor chain", () => {
  const head = (l.availIdx * 3) % 192;
  d.w16(l.avail + 4 + 2 * (l.availIdx % l.size), head);
  l.availIdx = (l.availIdx + 1) & 0xffff;
  d.w16(l.avail + 2, l.availIdx);
  if (!q.pop(chain)) throw new Error("pop failed");
  q.push(chain.head, chain.writableBytes);
  q.needsInterrupt();
});

const small = { addr: d.alloc(32), len: 32, write: true };
Deno.bench("virtio-rng: 32-byte request through the MMIO transport", () => {
  d.submit(0, [small]);
  d.setReg(R.INTERRUPT_ACK, 1);
});
