import assert from "node:assert/strict";
import { GuestMemory } from "./guest_memory.ts";
import {
  type BlkRequestSpan,
  type BlkTracer,
  type BlockBackendClient,
  type BlockInfo,
  VirtioBlk,
  VirtioBlkType as T,
} from "./virtio/blk.ts";
import { VirtioMmioTransport } from "./virtio/mmio_transport.ts";
import { TestDriver } from "./virtio/test_driver.ts";
import { blkStatusName, blkTracer, FrameSampler, withSpan } from "./tracing.ts";

/** A disk in memory that records the trace context of every call. */
class CtxDisk implements BlockBackendClient {
  readonly data = new Uint8Array(512 * 64);
  readonly seen: [string, unknown][] = [];
  fail = false;
  info(): Promise<BlockInfo> {
    return Promise.resolve({ sizeBytes: this.data.length, readOnly: false, discard: true });
  }
  #op<R>(name: string, ctx: unknown, f: () => R): Promise<R> {
    this.seen.push([name, ctx]);
    return this.fail ? Promise.reject(new Error("down")) : Promise.resolve(f());
  }
  read(offset: number, length: number, ctx?: unknown) {
    return this.#op("read", ctx, () => this.data.slice(offset, offset + length));
  }
  write(offset: number, data: Uint8Array, ctx?: unknown) {
    return this.#op("write", ctx, () => void this.data.set(data, offset));
  }
  flush(ctx?: unknown) {
    return this.#op("flush", ctx, () => undefined);
  }
  discard(offset: number, length: number, ctx?: unknown) {
    return this.#op("discard", ctx, () => void this.data.fill(0, offset, offset + length));
  }
}

/** A tracer that records what the device reports; each span's context is a label. */
class RecordingTracer implements BlkTracer {
  readonly spans: { op: string; sector: number; bytes: number; status?: number }[] = [];
  begin(op: string, sector: number, bytes: number): BlkRequestSpan {
    const rec: { op: string; sector: number; bytes: number; status?: number } = {
      op,
      sector,
      bytes,
    };
    this.spans.push(rec);
    return { context: `ctx-${this.spans.length}`, end: (s) => void (rec.status = s) };
  }
}

const drain = () => new Promise((r) => setTimeout(r, 0));

async function setup(tracer?: BlkTracer) {
  const mem = new GuestMemory(1 << 20);
  const disk = new CtxDisk();
  const blk = await VirtioBlk.open(disk, { tracer });
  const d = new TestDriver(mem, new VirtioMmioTransport(mem, blk, () => {}));
  d.init({ size: 32 });
  const request = (type: number, sector: number, data: number, write: boolean) => {
    const h = d.alloc(16);
    d.w32(h, type);
    d.w64(h + 8, sector);
    const descs = [{ addr: h, len: 16 }];
    if (data > 0) descs.push({ addr: d.alloc(data), len: data, ...(write ? { write } : {}) });
    descs.push({ addr: d.alloc(1), len: 1, write: true } as { addr: number; len: number });
    return d.submit(0, descs);
  };
  return { disk, blk, d, request };
}

Deno.test("tracing: each virtio-blk request is one span from pickup to completion; its backend calls get its context", async () => {
  const tracer = new RecordingTracer();
  const { disk, d, request } = await setup(tracer);
  request(T.IN, 3, 1024, true);
  request(T.OUT, 8, 512, false);
  request(T.FLUSH, 0, 0, false);
  request(T.GET_ID, 0, 20, true);
  request(99, 0, 0, false);
  await drain();
  assert.equal(d.takeUsed(0).length, 5);
  assert.deepEqual(tracer.spans, [
    { op: "read", sector: 3, bytes: 1024, status: 0 },
    { op: "write", sector: 8, bytes: 512, status: 0 },
    { op: "flush", sector: 0, bytes: 0, status: 0 },
    { op: "get_id", sector: 0, bytes: 20, status: 0 },
    { op: "type_99", sector: 0, bytes: 0, status: 2 },
  ]);
  assert.deepEqual(disk.seen, [["read", "ctx-1"], ["write", "ctx-2"], ["flush", "ctx-3"]]);

  disk.fail = true;
  request(T.IN, 0, 512, true);
  await drain();
  assert.equal(tracer.spans[5].status, 1, "a failed backend call ends the span IOERR");
});

Deno.test("tracing: a reset ends the spans of requests in flight as dropped", async () => {
  const tracer = new RecordingTracer();
  const { blk, request } = await setup(tracer);
  request(T.IN, 0, 512, true);
  blk.reset();
  await drain();
  assert.equal(tracer.spans[0].status, -1);
  assert.equal(blkStatusName(-1), "DROPPED");
});

Deno.test("tracing: without a tracer the backend gets no context", async () => {
  const { disk, request } = await setup();
  request(T.IN, 0, 512, true);
  await drain();
  assert.deepEqual(disk.seen, [["read", undefined]]);
});

Deno.test("tracing: off means no tracer, and plain calls", () => {
  assert.equal(blkTracer("vm1", "disk0", false), undefined);
  assert.equal(withSpan("vm pause", {}, undefined, () => 42, false), 42);
  assert.deepEqual([0, 1, 2, 7].map(blkStatusName), ["OK", "IOERR", "UNSUPP", "0x7"]);
});

Deno.test("tracing: the frame sampler traces one frame in N, none with N = 0", () => {
  const s = new FrameSampler("sw0", "vm1-net0", 3);
  const picked = [1, 2, 3, 4, 5, 6, 7].map(() => s.sample("tx", 60) !== undefined);
  assert.deepEqual(picked, [false, false, true, false, false, true, false]);
  const off = new FrameSampler("sw0", "vm1-net0", 0);
  assert.equal(off.active, false);
  assert.equal(off.sample("tx", 60), undefined);
});
