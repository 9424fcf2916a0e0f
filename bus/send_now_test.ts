import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { connect, startEmbeddedNats } from "./mod.ts";

const SUBSCRIBER = fileURLToPath(new URL("./testdata/stamp_subscriber.ts", import.meta.url));

Deno.test("Bus.sendNow: a publish reaches another process while this thread is still busy", async () => {
  const srv = await startEmbeddedNats({ jetstream: false, credentials: undefined });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", SUBSCRIBER],
    env: { NATS_URL: srv.url, SUBJECT: "t.stamp" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const text = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  const nextLine = async (): Promise<string> => {
    while (!buffered.includes("\n")) {
      const { value, done } = await text.read();
      if (done) throw new Error("the subscriber exited");
      buffered += value;
    }
    const i = buffered.indexOf("\n");
    const line = buffered.slice(0, i);
    buffered = buffered.slice(i + 1);
    return line;
  };
  const bus = await connect({ url: srv.url, name: "send-now-test", log: () => {} });
  try {
    assert.equal(await nextLine(), "ready");
    for (const now of [true, false]) {
      bus.nc.publish("t.stamp");
      if (now) bus.sendNow();
      // A long synchronous run, as the CPU loop's instruction batch: nothing else runs here.
      const until = Date.now() + 300;
      while (Date.now() < until) { /* busy */ }
      const busyEnd = Date.now();
      const got = Number(await nextLine());
      if (now) assert.ok(got < busyEnd, `sent now: arrived ${got - busyEnd} ms after the run`);
      else assert.ok(got >= busyEnd, "without sendNow the publish waits for the task's end");
    }
  } finally {
    await bus.close();
    child.kill();
    await child.status;
    await text.cancel().catch(() => {});
    await srv.stop();
  }
});
