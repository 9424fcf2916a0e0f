/**
 * The CPU service's block backend (`BusBlockClient`, the `BlockBackendClient` virtio-blk
 * uses) against the real disk service process on a real nats-server: reads and writes
 * (also split transfers larger than one bus request), and a disk service that is frozen
 * with a request in flight, killed and restarted: the request completes, with the same
 * request id, and the data is right.
 */
import assert from "node:assert/strict";
import { block, BusError, REQUEST_ID_HEADER, Status } from "@vmesh/bus";
import { BusBlockClient } from "../services/cpu/backends/bus_block_client.ts";
import { VirtioBlk } from "../services/cpu/virtio/blk.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

const MiB = 1 << 20;

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed * 7 + (i >> 9)) & 0xff);
}

Deno.test("cpu block client: reads and writes through the disk service, survives a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-blkclient-test-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  const image = `${dir}/disk.img`;
  const start = async () => {
    const p = await startService(
      "disk",
      ["--vm", "vmB", "--device", "disk0", "--image", image],
      tb.nats.url,
    );
    procs.push(p);
    return p;
  };
  try {
    await Deno.writeFile(image, new Uint8Array(4 * MiB));
    const first = await start();
    const client = new BusBlockClient(tb.bus, {
      vm: "vmB",
      device: "disk0",
      attemptTimeoutMs: 500,
      deadlineMs: 60_000,
      maxTransfer: 64 * 1024,
    });

    // Geometry as virtio-blk sees it.
    const blk = await VirtioBlk.open(client);
    assert.equal(blk.capacity, (4 * MiB) / 512);
    assert.equal(blk.info.readOnly, false);

    // Round trips, one of them split into 5 requests (300 KiB > 64 KiB per request).
    const a = pattern(4096, 1);
    await client.write(8192, a);
    assert.deepEqual(await client.read(8192, 4096), a);
    const big = pattern(300 * 1024, 2);
    await client.write(MiB, big);
    assert.deepEqual(await client.read(MiB, big.length), big);
    await client.flush();
    const onDisk = await Deno.readFile(image);
    assert.deepEqual(onDisk.subarray(MiB, MiB + big.length), big);
    assert.equal(client.retries, 0);

    // Freeze the service so the next requests are in flight, kill it, start another.
    Deno.kill(first.child.pid, "SIGSTOP");
    const c = pattern(128 * 1024, 3);
    const writing = client.write(2 * MiB, c);
    const reading = client.read(8192, 4096);
    first.child.kill("SIGKILL");
    await first.exited;
    await start();
    await writing;
    assert.deepEqual(await reading, a);
    assert.ok(client.retries > 0, "the requests were retried");
    assert.deepEqual(await client.read(2 * MiB, c.length), c);
    await client.flush();
    assert.deepEqual((await Deno.readFile(image)).subarray(2 * MiB, 2 * MiB + c.length), c);
    assert.equal(client.connected, true);
  } finally {
    for (const p of procs) await p.stop("SIGKILL");
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cpu block client: a missing disk service is UNAVAILABLE after the deadline", async () => {
  const tb = await startTestBus();
  try {
    const client = new BusBlockClient(tb.bus, {
      vm: "vmB",
      device: "nodisk",
      attemptTimeoutMs: 100,
      deadlineMs: 400,
    });
    await assert.rejects(client.read(0, 512), (e: Error) => {
      assert.match(e.message, /no service on vmesh\.vmB\.nodisk\.read/);
      return true;
    });
    assert.equal(client.connected, false);
  } finally {
    await tb.close();
  }
});

Deno.test("cpu block client: a retried write keeps its request id", async () => {
  const tb = await startTestBus();
  try {
    // Every attempt as it travels on the bus (a plain subscriber beside the service).
    const seen: string[] = [];
    const tap = tb.bus.nc.subscribe("vmesh.vmB.slow0.write", {
      callback: (_err, msg) => {
        seen.push(msg.headers?.get(REQUEST_ID_HEADER) ?? "");
      },
    });
    const data = new Uint8Array(4096);
    let calls = 0;
    const svc = await tb.bus.serve({
      vm: "vmB",
      device: "slow0",
      name: "test-disk",
      version: "0.0.1",
      ops: block.ops,
      handlers: {
        info: () => ({ sizeBytes: data.length, sectorSize: 512, readOnly: false, discard: false }),
        read: (r) => ({ data: data.slice(r.offset, r.offset + r.length) }),
        write: async (w) => {
          // The first attempt is slower than the client's attempt timeout: it retries.
          if (calls++ === 0) await new Promise((r) => setTimeout(r, 800));
          data.set(w.data, w.offset);
          return { written: w.data.length };
        },
        flush: () => ({}),
        discard: () => {
          throw new BusError(Status.FAILED_PRECONDITION, "no discard");
        },
      },
    });
    const client = new BusBlockClient(tb.bus, {
      vm: "vmB",
      device: "slow0",
      attemptTimeoutMs: 200,
      deadlineMs: 30_000,
    });
    await client.write(512, new Uint8Array(512).fill(9));
    assert.ok(seen.length >= 2, `${seen.length} attempts`);
    assert.ok(seen[0] !== "", "the request carries an id");
    for (const id of seen) assert.equal(id, seen[0], "every retry has the same request id");
    assert.equal(calls, 1, "the service applied the write once (replay cache)");
    tap.unsubscribe();
    assert.deepEqual(await client.read(512, 512), new Uint8Array(512).fill(9));
    await svc.stop();
  } finally {
    await tb.close();
  }
});
