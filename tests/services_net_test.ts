/**
 * The net service as a real process: ports join a hub switch and exchange frames, an
 * echo switch returns frames, leave stops delivery, typed errors, discovery.
 */
import assert from "node:assert/strict";
import { net, netPortPrefix, netPortSubject, Status } from "@vmesh/bus";
import type { SwitchStats } from "../services/net/mod.ts";
import {
  discover,
  MALFORMED,
  rawErrorRequest,
  type ServiceProcess,
  startService,
  startTestBus,
} from "./services_harness.ts";

type TestBus = Awaited<ReturnType<typeof startTestBus>>;

/** An Ethernet frame from `src` to `dst` (last MAC byte each) with a one-byte tag. */
function frame(dst: number, src: number, tag: number): Uint8Array {
  const f = new Uint8Array(60);
  f.set([0x52, 0x54, 0, 0, 0, dst, 0x52, 0x54, 0, 0, 0, src, 0x08, 0x00], 0);
  f.fill(tag, 14);
  return f;
}

/** Receives frames on a port's rx subject. */
class PortRx {
  readonly frames: net.Frame[] = [];
  #waiters: Array<() => void> = [];
  readonly sub;

  constructor(tb: TestBus, sw: string, port: string) {
    this.sub = tb.bus.subscribe(net.frame, netPortSubject(sw, port, "rx"), (f) => {
      this.frames.push(f);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** Resolves once `n` frames have arrived. */
  async count(n: number): Promise<net.Frame[]> {
    while (this.frames.length < n) await new Promise<void>((r) => this.#waiters.push(r));
    return this.frames;
  }
}

Deno.test("net service: ports on a switch exchange frames", async (t) => {
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    procs.push(await startService("net", ["--switch", "sw0", "--http", "0"], tb.nats.url));
    procs.push(await startService("net", ["--switch", "lo0", "--mode", "echo"], tb.nats.url));
    const sw0 = tb.bus.client({ prefix: "vmesh.net.sw0" }, net.ops);
    const lo0 = tb.bus.client({ prefix: "vmesh.net.lo0" }, net.ops);
    const tx = (sw: string, port: string, data: Uint8Array, seq = 0) =>
      tb.bus.publish(net.frame, netPortSubject(sw, port, "tx"), { data, seq });

    await t.step("two ports exchange frames in order, in both directions", async () => {
      const rxA = new PortRx(tb, "sw0", "a");
      const rxB = new PortRx(tb, "sw0", "b");
      await tb.bus.flush();
      assert.equal(
        (await sw0.call("join", { switch: "sw0", mac: "52:54:00:00:00:01", portId: "a" })).mtu,
        1500,
      );
      await sw0.call("join", { switch: "sw0", mac: "52:54:00:00:00:02", portId: "b" });
      for (let i = 0; i < 10; i++) tx("sw0", "a", frame(2, 1, i), i);
      tx("sw0", "b", frame(1, 2, 0xbb));
      const atB = await rxB.count(10);
      assert.deepEqual(
        atB.map((f) => f.data),
        Array.from({ length: 10 }, (_, i) => frame(2, 1, i)),
      );
      assert.deepEqual(atB.map((f) => f.seq), Array.from({ length: 10 }, (_, i) => i));
      const atA = await rxA.count(1);
      assert.deepEqual(atA[0].data, frame(1, 2, 0xbb));
      assert.equal(rxA.frames.length, 1); // a never hears its own frames on a hub

      // After b leaves, a's next frame reaches c but not b (same publisher: ordered).
      const rxC = new PortRx(tb, "sw0", "c");
      await tb.bus.flush();
      await sw0.call("join", { switch: "sw0", mac: "52:54:00:00:00:03", portId: "c" });
      await sw0.call("leave", { switch: "sw0", portId: "b" });
      tx("sw0", "a", frame(3, 1, 0xcc));
      assert.deepEqual((await rxC.count(1))[0].data, frame(3, 1, 0xcc));
      await tb.bus.flush();
      assert.equal(rxB.frames.length, 10);
      for (const r of [rxA, rxB, rxC]) r.sub.unsubscribe();
    });

    await t.step("the switch learns: unicast reaches only its port, broadcast floods", async () => {
      const rx = Object.fromEntries(["p", "q", "r"].map((id) => [id, new PortRx(tb, "sw0", id)]));
      await tb.bus.flush();
      for (const [i, id] of ["p", "q", "r"].entries()) {
        await sw0.call("join", { switch: "sw0", mac: `52:54:00:00:01:0${i}`, portId: id });
      }
      // p → q (q's MAC is known from its join), then a broadcast from p as a marker.
      const uni = frame(0, 0, 0x11);
      uni.set([0x52, 0x54, 0, 0, 1, 1, 0x52, 0x54, 0, 0, 1, 0], 0);
      const bc = frame(0, 0, 0x22);
      bc.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0, 1, 0], 0);
      tx("sw0", "p", uni);
      tx("sw0", "p", bc);
      assert.deepEqual((await rx.q.count(2)).map((f) => f.data[20]), [0x11, 0x22]);
      // Frames from one publisher arrive in order: r saw the broadcast, so it would have seen uni.
      assert.deepEqual((await rx.r.count(1)).map((f) => f.data[20]), [0x22]);
      assert.equal(rx.p.frames.length, 0);
      for (const r of Object.values(rx)) r.sub.unsubscribe();
    });

    await t.step(
      "batches: a batching port gets one message per turn, old ports one per frame",
      async () => {
        const rxN = new PortRx(tb, "sw0", "bn"), rxO = new PortRx(tb, "sw0", "bo");
        await tb.bus.flush();
        const joined = await sw0.call("join", {
          switch: "sw0",
          mac: "52:54:00:00:02:01",
          portId: "bn",
          batch: true,
        });
        assert.equal(joined.batch, true, "the switch says it reads batches");
        await sw0.call("join", { switch: "sw0", mac: "52:54:00:00:02:02", portId: "bo" });
        await sw0.call("join", { switch: "sw0", mac: "52:54:00:00:02:03", portId: "bs" });
        const to = (dst: number, tag: number) => {
          const f = frame(0, 0, tag);
          f.set([0x52, 0x54, 0, 0, 2, dst, 0x52, 0x54, 0, 0, 2, 3], 0);
          return f;
        };
        // One batch message from bs: 3 frames for bn, 2 for bo, in one message.
        const sent = [to(1, 1), to(2, 2), to(1, 3), to(2, 4), to(1, 5)];
        tb.bus.publish(net.frame, netPortSubject("sw0", "bs", "tx"), {
          data: sent[0],
          seq: 0,
          more: sent.slice(1),
        });
        const atN = await rxN.count(1);
        assert.equal(atN.length, 1, "one message for the batching port");
        assert.deepEqual([atN[0].data, ...(atN[0].more ?? [])].map((f) => f[20]), [1, 3, 5]);
        const atO = await rxO.count(2);
        assert.deepEqual(atO.map((f) => f.data[20]), [2, 4]);
        assert.ok(
          atO.every((f) => (f.more ?? []).length === 0),
          "no batch to a port that did not ask",
        );
        for (const r of [rxN, rxO]) r.sub.unsubscribe();
        for (const id of ["bn", "bo", "bs"]) await sw0.call("leave", { switch: "sw0", portId: id });
      },
    );

    await t.step("garbage and bad frames are counted in $SRV.STATS; serving goes on", async () => {
      const rx = new PortRx(tb, "sw0", "q");
      await tb.bus.flush();
      tb.bus.nc.publish(netPortSubject("sw0", "p", "tx"), MALFORMED);
      tx("sw0", "p", new Uint8Array(13));
      tx("sw0", "p", new Uint8Array(1515));
      tx("sw0", "ghost", frame(1, 2, 0));
      const ok = frame(0, 0, 0x33);
      ok.set([0x52, 0x54, 0, 0, 1, 1, 0x52, 0x54, 0, 0, 1, 0], 0);
      tx("sw0", "p", ok);
      assert.equal((await rx.count(1))[0].data[20], 0x33);
      rx.sub.unsubscribe();
      // Two switch processes answer; take sw0's.
      const all = [];
      const replies = await tb.bus.nc.requestMany("$SRV.STATS.vmesh-net", new Uint8Array(), {
        strategy: "count",
        maxMessages: 2,
        maxWait: 10_000,
      });
      for await (const m of replies) all.push(m.json<{ endpoints: { data: unknown }[] }>());
      const sw = all.map((s) => s.endpoints[0].data as SwitchStats).find((d) =>
        d.switch === "sw0"
      )!;
      assert.equal(sw.mode, "learn");
      assert.deepEqual(
        [sw.drops.malformed, sw.drops.runt, sw.drops.oversize, sw.drops.unjoined],
        [1, 1, 1, 1],
      );
      const p = sw.portStats.find((x) => x.id === "p")!;
      assert.equal(p.rxFrames, 3);
      assert.equal(p.rxBytes, 180);
      assert.ok(sw.rxFrames >= p.rxFrames && sw.txFrames > 0 && sw.fdb >= 3);
      // The same counters as Prometheus metrics on the control endpoint.
      const url = /vmesh-net http: (\S+)/.exec(procs[0].log.join("\n"))![1];
      const text = await (await fetch(`${url}/metrics`)).text();
      assert.match(text, /^vmesh_net_switch_drops_total\{switch="sw0",reason="malformed"\} 1$/m);
      assert.match(
        text,
        /^vmesh_net_port_frames_total\{switch="sw0",port="p",direction="rx"\} 3$/m,
      );
      assert.match(text, /^vmesh_net_switch_ports\{switch="sw0"\} \d+$/m);
    });

    await t.step("echo switch returns a frame to its sender", async () => {
      const rx = new PortRx(tb, "lo0", "e");
      await tb.bus.flush();
      await lo0.call("join", { switch: "lo0", mac: "52:54:00:00:00:0e", portId: "e" });
      tx("lo0", "e", frame(0xff, 0x0e, 0x42));
      assert.deepEqual((await rx.count(1))[0].data, frame(0xff, 0x0e, 0x42));
      rx.sub.unsubscribe();
    });

    await t.step("bad requests are typed errors and the switch keeps serving", async () => {
      await assert.rejects(
        sw0.call("join", { switch: "sw0", mac: "not-a-mac", portId: "x" }),
        (e: Error & { status?: string }) => e.status === "INVALID_ARGUMENT",
      );
      await assert.rejects(
        sw0.call("join", { switch: "sw9", mac: "52:54:00:00:00:09", portId: "x" }),
        (e: Error & { status?: string }) => e.status === "NOT_FOUND",
      );
      await assert.rejects(
        sw0.call("join", { switch: "sw0", mac: "52:54:00:00:00:09", portId: "x.y" }),
        (e: Error & { status?: string }) => e.status === "INVALID_ARGUMENT",
      );
      const mal = await rawErrorRequest(tb.bus, "vmesh.net.sw0.join", MALFORMED);
      assert.equal(mal.header, "MALFORMED");
      const unk = await rawErrorRequest(tb.bus, "vmesh.net.sw0.teleport", new Uint8Array());
      assert.equal(unk.code, Status.UNKNOWN_OP);
      const big = net.ops.join.request.encode({
        switch: "sw0",
        mac: "x".repeat(10_000),
        portId: "x",
      });
      assert.equal((await rawErrorRequest(tb.bus, "vmesh.net.sw0.join", big)).header, "TOO_LARGE");
      const ok = await sw0.call("join", { switch: "sw0", mac: "52:54:00:00:00:09", portId: "x" });
      assert.equal(ok.mtu, 1500);
    });

    await t.step("a port's own join/leave subject: only for that port", async () => {
      const port = tb.bus.client({ prefix: netPortPrefix("sw0", "own") }, net.ops);
      const r = await port.call("join", { switch: "sw0", mac: "52:54:00:00:00:0a", portId: "own" });
      assert.equal(r.mtu, 1500);
      // Another port's id on this port's subject: refused (bus permissions guard the subject).
      await assert.rejects(
        port.call("join", { switch: "sw0", mac: "52:54:00:00:00:0b", portId: "other" }),
        (e: Error & { status?: string }) =>
          e.status === "INVALID_ARGUMENT" && /port "other" cannot be joined/.test(e.message),
      );
      await assert.rejects(
        port.call("leave", { switch: "sw0", portId: "other" }),
        (e: Error & { status?: string }) => e.status === "INVALID_ARGUMENT",
      );
      assert.equal((await port.call("leave", { switch: "sw0", portId: "own" })).status, Status.OK);
    });

    await t.step("discovery lists both switches with join and leave", async () => {
      const infos = await discover(tb.bus, "vmesh-net", 2);
      assert.deepEqual(infos.map((i) => i.metadata?.switch).sort(), ["lo0", "sw0"]);
      const sw = infos.find((i) => i.metadata?.switch === "sw0")!;
      assert.equal(sw.version, "0.1.0");
      assert.deepEqual(sw.endpoints.map((e) => e.subject).sort(), [
        "vmesh.net.sw0.join",
        "vmesh.net.sw0.leave",
      ]);
    });

    await t.step("SIGTERM exits 0", async () => {
      for (const p of procs) assert.equal(await p.stop("SIGTERM"), 0, p.log.join("\n"));
    });
  } finally {
    for (const p of procs) await p.stop("SIGKILL");
    await tb.close();
  }
});
