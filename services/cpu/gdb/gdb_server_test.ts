import assert from "node:assert/strict";
import { GdbServer, parseGdbAddress } from "./gdb_server.ts";
import { type DebugTarget, GdbStub } from "./gdb_stub.ts";
import { encodePacket, RspReader } from "./rsp_packet.ts";
import { GuestMemory } from "../guest_memory.ts";
import { Hart } from "../hart/hart.ts";
import { ManualClock, TestBus } from "../hart/test_support.ts";

Deno.test("gdb server: QEMU's -gdb address forms", () => {
  assert.deepEqual(parseGdbAddress("tcp:127.0.0.1:1234"), { hostname: "127.0.0.1", port: 1234 });
  assert.deepEqual(parseGdbAddress("tcp::1234"), { hostname: "0.0.0.0", port: 1234 });
  assert.deepEqual(parseGdbAddress(":1234"), { hostname: "0.0.0.0", port: 1234 });
  assert.deepEqual(parseGdbAddress("1234"), { hostname: "0.0.0.0", port: 1234 });
  assert.deepEqual(parseGdbAddress("tcp:[::1]:1234"), { hostname: "::1", port: 1234 });
  for (const bad of ["tcp:host", "tcp::99999", "unix:/tmp/s", "tcp:a:b", ""]) {
    assert.match(parseGdbAddress(bad) as string, /--gdb needs tcp:HOST:PORT/, bad);
  }
});

/** Reads packets from `conn` until one arrives. */
async function nextPacket(conn: Deno.Conn, reader: RspReader): Promise<string> {
  const buf = new Uint8Array(4096);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) throw new Error("closed");
    const p = reader.feed(buf.subarray(0, n)).find((e) => e.kind === "packet");
    if (p && p.kind === "packet") return p.payload;
  }
}

Deno.test("gdb server: one client at a time, acks until QStartNoAckMode, close sends what is queued", async () => {
  const mem = new GuestMemory(1 << 20);
  const hart = new Hart({ mem, hartId: 0, bus: new TestBus(() => {}), clock: new ManualClock() });
  const target: DebugTarget = { harts: [hart], mem, kill: () => {} };
  const stub = new GdbStub(target, { waitForClient: true });
  const server = new GdbServer(stub, { hostname: "127.0.0.1", port: 0 });
  const a = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const reader = new RspReader();
  await a.write(new TextEncoder().encode(encodePacket("?")));
  assert.equal(await nextPacket(a, reader), "T05thread:01;");

  // A second client is refused while the first is attached.
  const b = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  assert.equal(await b.read(new Uint8Array(16)), null);
  b.close();

  const raw = new Uint8Array(64);
  await a.write(new TextEncoder().encode(encodePacket("QStartNoAckMode")));
  assert.equal(await nextPacket(a, reader), "OK");
  await a.write(new TextEncoder().encode(encodePacket("qAttached")));
  const n = await a.read(raw);
  assert.equal(new TextDecoder().decode(raw.subarray(0, n!)), encodePacket("1"), "no '+' any more");

  stub.targetExited(7);
  await server.close();
  assert.equal(await nextPacket(a, reader), "W07");
  a.close();
});
