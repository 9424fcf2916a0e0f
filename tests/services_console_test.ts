/**
 * The console service as a real process: output batches in stream order to a log file,
 * gaps reported, keyboard input (with Ctrl-A escapes) and `send` published as input
 * batches, typed errors, discovery.
 */
import assert from "node:assert/strict";
import { ops as consoleOps } from "@vmesh/console";
import { consoleMsgs, consoleSubject, Status, vm } from "@vmesh/bus";
import {
  discover,
  MALFORMED,
  rawErrorRequest,
  type ServiceProcess,
  startService,
  startTestBus,
} from "./services_harness.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

/** Polls `path` until it holds at least `length` bytes (or fails after 20 s). */
async function waitForFile(path: string, length: number): Promise<string> {
  for (let i = 0; i < 2000; i++) {
    const text = await Deno.readTextFile(path).catch(() => "");
    if (text.length >= length) return text;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${path} never reached ${length} bytes`);
}

/** Collects input batches on a console `in` subject until `n` bytes arrived. */
function collectInput(
  tb: Awaited<ReturnType<typeof startTestBus>>,
  vmName: string,
  n: number,
): Promise<consoleMsgs.ByteBatch[]> {
  const got: consoleMsgs.ByteBatch[] = [];
  let total = 0;
  return new Promise((resolve) => {
    const sub = tb.bus.subscribe(consoleMsgs.byteBatch, consoleSubject(vmName, "in"), (b) => {
      got.push(b);
      total += b.data.length;
      if (total >= n) {
        sub.unsubscribe();
        resolve(got);
      }
    });
  });
}

Deno.test("console service: log backend, input, escapes, typed errors", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-console-test-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    const logPath = `${dir}/vm1.log`;
    const c1 = await startService(
      "console",
      ["--vm", "vm1", "--backend", `log:${logPath}`],
      tb.nats.url,
    );
    procs.push(c1);
    await tb.bus.flush();

    await t.step("batches land in stream order; duplicates trimmed, gaps logged", async () => {
      const out = consoleSubject("vm1", "out");
      const pub = (seq: number, s: string) =>
        tb.bus.publish(consoleMsgs.byteBatch, out, { seq, data: enc(s) });
      let expected = "";
      let seq = 0;
      for (let i = 0; i < 200; i++) {
        const line = `line ${i}\n`;
        pub(seq, line);
        seq += line.length;
        expected += line;
      }
      pub(0, "line 0\n"); // a duplicate of the first batch
      pub(seq - 3, "99\nmore"); // overlaps the last batch by three bytes
      seq += 4;
      expected += "more";
      pub(seq + 84, "X"); // 84 bytes never arrive
      expected += "X";
      await tb.bus.flush();
      assert.equal(await waitForFile(logPath, expected.length), expected);
      for (let i = 0; i < 500 && !c1.log.some((l) => l.includes("lost 84 bytes")); i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(c1.log.some((l) => l.includes("lost 84 bytes")), c1.log.join("\n"));
    });

    const client = tb.bus.client({ vm: "vm1", device: "console" }, consoleOps);

    await t.step("send publishes input batches numbered by stream position", async () => {
      const input = collectInput(tb, "vm1", 7);
      await client.call("send", { seq: 0, data: enc("ls\n") });
      await client.call("send", { seq: 0, data: enc("pwd\n") });
      const batches = await input;
      assert.deepEqual(batches.map((b) => [b.seq, dec(b.data)]), [[0, "ls\n"], [3, "pwd\n"]]);
    });

    await t.step("malformed, unknown op, oversized: typed errors, then still serving", async () => {
      const mal = await rawErrorRequest(tb.bus, "vmesh.vm1.console.send", MALFORMED);
      assert.equal(mal.header, "MALFORMED");
      const unk = await rawErrorRequest(tb.bus, "vmesh.vm1.console.reboot", new Uint8Array());
      assert.equal(unk.code, Status.UNKNOWN_OP);
      const big = consoleMsgs.byteBatch.codec.encode({ seq: 0, data: new Uint8Array(100_000) });
      const tooBig = await rawErrorRequest(tb.bus, "vmesh.vm1.console.send", big);
      assert.equal(tooBig.header, "TOO_LARGE");
      const input = collectInput(tb, "vm1", 2);
      await client.call("send", { seq: 0, data: enc("ok") });
      assert.equal(dec((await input)[0].data), "ok");
    });

    await t.step("discovery lists the console with its send endpoint", async () => {
      const [info] = await discover(tb.bus, "vmesh-console", 1);
      assert.equal(info.version, "0.1.0");
      assert.deepEqual(info.endpoints.map((e) => e.subject), ["vmesh.vm1.console.send"]);
    });

    await t.step(
      "terminal: keys go to the guest, Ctrl-A Ctrl-A is literal, Ctrl-A x stops",
      async () => {
        const stops: string[] = [];
        const ctl = tb.bus.nc.subscribe("vmesh.vm2.ctl.stop", {
          callback: (_err, msg) => {
            stops.push(msg.subject);
            msg.respond(
              vm.ops.stop.reply.encode({
                state: vm.State.STOPPED,
                pc: 0n,
                instret: 0n,
                devices: [],
              }),
            );
          },
        });
        await tb.bus.flush();
        const c2 = await startService(
          "console",
          ["--vm", "vm2", "--backend", "terminal"],
          tb.nats.url,
          {
            stdin: "piped",
          },
        );
        procs.push(c2);
        const input = collectInput(tb, "vm2", 4);
        await tb.bus.flush(); // the subscription is on the server before any key is typed
        const writer = c2.child.stdin.getWriter();
        await writer.write(enc("abc\x01\x01"));
        const keys = (await input).map((b) => dec(b.data)).join("");
        assert.equal(keys, "abc\x01");
        await writer.write(enc("\x01x"));
        await writer.close();
        assert.equal(await c2.exited, 0, c2.log.join("\n"));
        assert.deepEqual(stops, ["vmesh.vm2.ctl.stop"]);
        ctl.unsubscribe();
      },
    );

    await t.step("SIGTERM exits 0", async () => {
      assert.equal(await c1.stop("SIGTERM"), 0, c1.log.join("\n"));
    });
  } finally {
    for (const p of procs) await p.stop("SIGKILL");
    await tb.close();
    await Deno.remove(dir, { recursive: true });
  }
});
