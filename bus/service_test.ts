import assert from "node:assert/strict";
import {
  block,
  BusError,
  connect,
  consoleMsgs,
  type Handlers,
  processGone,
  Status,
  withNats,
} from "./mod.ts";

function handlers(over: Partial<Handlers<typeof block.ops>>): Handlers<typeof block.ops> {
  return {
    info: () => ({ sizeBytes: 4096, sectorSize: 512, readOnly: true, discard: false }),
    read: ({ length }) => ({ data: new Uint8Array(length) }),
    write: () => {
      throw new BusError(Status.READ_ONLY, "read-only disk");
    },
    flush: () => ({}),
    discard: () => ({}),
    ...over,
  };
}

Deno.test("service: handler failures become typed errors, one log line each", async () => {
  const lines: string[] = [];
  const bus = await connect({ name: "service-test", log: (l) => lines.push(l) });
  let release = () => {};
  const stuck = new Promise<void>((r) => release = r);
  const svc = await bus.serve({
    vm: "vmU",
    device: "disk0",
    name: "vmesh-test-disk",
    version: "0.0.1",
    ops: block.ops,
    handlers: handlers({
      // deno-lint-ignore no-explicit-any
      flush: () => ({ status: "not a status" } as any),
      discard: () => {
        throw new Error("backend exploded");
      },
      info: async () => {
        await stuck;
        return { sizeBytes: 1, sectorSize: 512, readOnly: true, discard: false };
      },
    }),
  });
  try {
    const disk = bus.client({ vm: "vmU", device: "disk0" }, block.ops);
    const code = (p: Promise<unknown>) =>
      p.then(() => "ok", (e) => e instanceof BusError ? e.status : `untyped ${e}`);
    assert.equal(
      await code(disk.call("write", { offset: 0, data: new Uint8Array(1) })),
      "READ_ONLY",
    );
    assert.equal(await code(disk.call("discard", { offset: 0, length: 1 })), "INTERNAL");
    assert.equal(await code(disk.call("flush", {})), "INTERNAL");
    assert.equal(
      await code(disk.call("info", {}, { timeoutMs: 50, retries: 1, retryDelayMs: 1 })),
      "DEADLINE_EXCEEDED",
    );
    const other = bus.client({ vm: "vmU", device: "nodisk" }, block.ops);
    assert.equal(
      await code(other.call("read", { offset: 0, length: 1 }, { retries: 2, retryDelayMs: 1 })),
      "UNAVAILABLE",
    );
    assert.equal(await code(disk.call("read", { offset: 0, length: 8 })), "ok");
    assert.equal(lines.length, 3, lines.join("\n"));
    assert.match(lines[0], /disk0\.write request \S+: READ_ONLY: read-only disk/);
    assert.match(lines[1], /disk0\.discard request \S+: INTERNAL: backend exploded/);
    assert.match(lines[2], /disk0\.flush request \S+: INTERNAL: handler returned a bad reply/);
  } finally {
    release();
    await svc.stop();
    await bus.close();
  }
});

Deno.test("pubsub: an undecodable message is dropped with one log line", async () => {
  const lines: string[] = [];
  const bus = await connect({ name: "pubsub-test", log: (l) => lines.push(l) });
  try {
    const got: number[] = [];
    let wake = () => {};
    const sub = bus.subscribe(consoleMsgs.byteBatch, "vmesh.vmP.console.out", (b) => {
      got.push(b.seq);
      wake();
    });
    await bus.flush();
    bus.nc.publish("vmesh.vmP.console.out", new Uint8Array([0x08, 0xff]));
    bus.publish(consoleMsgs.byteBatch, "vmesh.vmP.console.out", {
      seq: 7,
      data: new Uint8Array(1),
    });
    while (got.length === 0) await new Promise<void>((r) => wake = r);
    sub.unsubscribe();
    assert.deepEqual(got, [7]);
    assert.equal(lines.length, 1);
    assert.match(lines[0], /vmesh\.vmP\.console\.out: dropped message: cannot decode/);
  } finally {
    await bus.close();
  }
});

Deno.test("withNats: runs a function against a server and stops a private one after", async () => {
  const saved = Deno.env.get("NATS_URL");
  Deno.env.delete("NATS_URL");
  try {
    let pid = 0;
    const answer = await withNats(async (url) => {
      const bus = await connect({ url, name: "with-nats" });
      pid = bus.embedded?.pid ?? 0; // connected by URL: not embedded
      await bus.close();
      return url;
    });
    assert.match(answer, /^nats:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(pid, 0);
    const h = await withNats();
    assert.ok(h.embedded && !processGone(h.embedded.pid));
    await h.stop();
    assert.ok(processGone(h.embedded.pid));
  } finally {
    if (saved) Deno.env.set("NATS_URL", saved);
  }
});

Deno.test("service: a reply over the server's max_payload becomes TOO_LARGE", async () => {
  const lines: string[] = [];
  const bus = await connect({ name: "big-reply-test", log: (l) => lines.push(l) });
  const svc = await bus.serve({
    vm: "vmB",
    device: "disk0",
    name: "vmesh-test-disk",
    version: "0.0.1",
    ops: block.ops,
    handlers: handlers({}),
  });
  try {
    const disk = bus.client({ vm: "vmB", device: "disk0" }, block.ops);
    const max = bus.nc.info!.max_payload;
    const err = await disk.call("read", { offset: 0, length: max + 1 }).catch((e) => e);
    assert.ok(err instanceof BusError);
    assert.equal(err.code, Status.TOO_LARGE);
    assert.equal((await disk.call("read", { offset: 0, length: 16 })).data.length, 16);
    assert.equal(lines.length, 1);
  } finally {
    await svc.stop();
    await bus.close();
  }
});
