/**
 * Per-VM credentials on a real nats-server (bus/credentials.ts): with VM A's users a client
 * cannot read VM B's console, disk or frames, cannot call B's control ops, and an anonymous
 * client is refused; each refusal is a permission error from the server.
 */
import assert from "node:assert/strict";
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { BusCredentials, type BusRole, inboxPrefix, startEmbeddedNats } from "@vmesh/bus";

const cpuA: BusRole = {
  kind: "cpu",
  vm: "A",
  disks: ["disk0"],
  ports: [{ switch: "sw0", port: "A-net0" }],
};
const cpuB: BusRole = {
  kind: "cpu",
  vm: "B",
  disks: ["disk0"],
  ports: [{ switch: "sw0", port: "B-net0" }],
};

async function login(url: string, creds: BusCredentials, role: BusRole): Promise<NatsConnection> {
  const u = creds.add(role);
  return watch(
    await natsConnect({
      servers: url.replace("nats://", ""),
      user: u.user,
      pass: u.password,
      inboxPrefix: inboxPrefix(u.user),
    }),
  );
}

/** Status events of each connection, as text. */
const events = new Map<NatsConnection, string[]>();
function watch(nc: NatsConnection): NatsConnection {
  const list: string[] = [];
  events.set(nc, list);
  (async () => {
    for await (const s of nc.status()) {
      list.push(`${s.type} ${"error" in s ? (s.error as Error).message : JSON.stringify(s)}`);
    }
  })();
  return nc;
}

/** The next permission error the server reports on `nc` within `ms`. */
async function permissionError(nc: NatsConnection, ms = 2000): Promise<string> {
  const list = events.get(nc)!;
  const start = list.length;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const hit = list.slice(start).find((t) => /permission/i.test(t));
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 20));
  }
  return "";
}

Deno.test("bus permissions: VM A's users cannot reach VM B's subjects", async () => {
  const creds = new BusCredentials();
  for (const r of [cpuA, cpuB]) creds.add(r);
  creds.add({ kind: "disk", vm: "B", device: "disk0" });
  const srv = await startEmbeddedNats({ jetstream: false, credentials: creds });
  const b = await login(srv.url, creds, cpuB);
  const diskB = await login(srv.url, creds, { kind: "disk", vm: "B", device: "disk0" });
  const a = await login(srv.url, creds, cpuA);
  try {
    // B's disk answers B's requests; B's cpu may call it.
    diskB.subscribe("vmesh.B.disk0.read", { callback: (_e, m) => void m.respond(m.data) });
    await diskB.flush();
    const ok = await b.request("vmesh.B.disk0.read", new Uint8Array([1]), { timeout: 2000 });
    assert.deepEqual([...ok.data], [1]);

    // A reads B's console output: refused.
    for (
      const subject of [
        "vmesh.B.console.out",
        "vmesh.net.sw0.port.B-net0.rx",
        "vmesh.B.disk0.read",
        "vmesh.>",
        "_INBOX.cpu-B.>",
      ]
    ) {
      const err = permissionError(a);
      const sub = a.subscribe(subject);
      const seen = await err;
      assert.match(seen, /Permissions Violation for Subscription/i, subject);
      assert.ok(seen.includes(subject), seen);
      sub.unsubscribe();
    }
    // A calls B's disk and B's control ops, sends on B's port: refused by the server.
    for (
      const subject of ["vmesh.B.disk0.read", "vmesh.B.ctl.stop", "vmesh.net.sw0.port.B-net0.tx"]
    ) {
      const err = permissionError(a);
      a.publish(subject, new Uint8Array([2]));
      const seen = await err;
      assert.match(seen, /Permissions Violation for Publish/i, subject);
      assert.ok(seen.includes(subject), seen);
    }
    // A's own subjects still work.
    const own = a.subscribe("vmesh.A.console.in", { max: 1 });
    await a.flush();
    const admin = await login(srv.url, creds, { kind: "admin" });
    admin.publish("vmesh.A.console.in", new Uint8Array([3]));
    for await (const m of own) assert.deepEqual([...m.data], [3]);
    await admin.close();
  } finally {
    await a.close();
    await b.close();
    await diskB.close();
    await srv.stop();
  }
});
