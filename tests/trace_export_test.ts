// Deno's built-in OTLP export end to end: a real disk service process and a client
// process, both with OTEL_DENO=true, export to a test OTLP/HTTP receiver; the request
// is one trace with the server span a child of the client span.
import assert from "node:assert/strict";
import { startEmbeddedNats } from "@vmesh/bus";
import { OtlpSpanKind, type ReceivedSpan, startOtlpReceiver } from "./otlp_receiver.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// The client: one traced read of the disk, then exit (Deno flushes its spans on exit).
const CLIENT = `
import { block, connect } from "@vmesh/bus";
const bus = await connect({ name: "trace-client" });
const disk = bus.client({ vm: "vmT", device: "disk0" }, block.ops);
const { data } = await disk.call("read", { offset: 512, length: 512 }, { timeoutMs: 5000 });
if (data.length !== 512) throw new Error("short read");
await bus.close();
`;

interface Proc {
  child: Deno.ChildProcess;
  log: string[];
  exited: Promise<number>;
}

/** Spawns with stderr collected; resolves once a line contains `readyText` (if given). */
async function spawn(args: string[], env: Record<string, string>, readyText?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    env: { ...env, NO_COLOR: "1" },
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const log: string[] = [];
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => ready = r);
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      for (const line of chunk.split("\n")) {
        if (!line) continue;
        log.push(line);
        if (readyText && line.includes(readyText)) ready();
      }
    }
  })();
  const exited = child.status.then(async (s) => (await reading, s.code));
  const p: Proc = { child, log, exited };
  if (readyText) {
    const first = await Promise.race([isReady.then(() => "ready"), exited]);
    if (first !== "ready") throw new Error(`exited ${first} before ready:\n${log.join("\n")}`);
  }
  return p;
}

function checkPair(spans: ReceivedSpan[]) {
  const client = spans.find((s) =>
    s.name === "send vmesh.vmT.disk0.read" && s.kind === OtlpSpanKind.CLIENT
  );
  const server = spans.find((s) =>
    s.name === "process vmesh.vmT.disk0.read" && s.kind === OtlpSpanKind.SERVER
  );
  assert.ok(client, `no client span in ${JSON.stringify(spans.map((s) => s.name))}`);
  assert.ok(server, `no server span in ${JSON.stringify(spans.map((s) => s.name))}`);
  assert.equal(client.serviceName, "trace-client");
  assert.equal(server.serviceName, "vmesh-disk-test");
  assert.match(client.traceId, /^[0-9a-f]{32}$/);
  assert.equal(server.traceId, client.traceId, "one trace per request");
  assert.equal(server.parentSpanId, client.spanId, "server span is the client span's child");
  assert.notEqual(server.spanId, client.spanId);
  for (const s of [client, server]) {
    assert.equal(s.attributes["messaging.system"], "nats");
    assert.equal(s.attributes["messaging.destination.name"], "vmesh.vmT.disk0.read");
    assert.equal(s.attributes["vmesh.vm"], "vmT");
    assert.equal(s.attributes["vmesh.device"], "disk0");
    assert.equal(s.attributes["vmesh.op"], "read");
  }
  assert.equal(client.attributes["messaging.operation"], "send");
  assert.equal(server.attributes["messaging.operation"], "process");
}

async function withTopology(
  protocol: "http/json" | "http/protobuf",
  serviceEnv: Record<string, string>,
  body: (
    rx: ReturnType<typeof startOtlpReceiver>,
    svc: Proc,
    env: Record<string, string>,
  ) => Promise<void>,
) {
  const rx = startOtlpReceiver();
  const nats = await startEmbeddedNats();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-trace-" });
  let svc: Proc | undefined;
  try {
    await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(64 * 1024));
    const env = {
      NATS_URL: nats.url,
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    };
    svc = await spawn(
      [
        "run",
        "-A",
        "--quiet",
        "services/disk/main.ts",
        "--vm",
        "vmT",
        "--image",
        `${dir}/disk.img`,
      ],
      { ...env, ...serviceEnv, OTEL_SERVICE_NAME: "vmesh-disk-test" },
      " ready: ",
    );
    await body(rx, svc, env);
  } finally {
    if (svc) {
      try {
        svc.child.kill("SIGTERM");
      } catch { /* already gone */ }
      await svc.exited;
    }
    await nats.stop();
    await rx.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (const protocol of ["http/json", "http/protobuf"] as const) {
  Deno.test(`trace export (${protocol}): client and server spans of a disk read reach the OTLP receiver, flushed on exit`, async () => {
    await withTopology(protocol, {}, async (rx, svc, env) => {
      const client = await spawn(["eval", "--ext=ts", CLIENT], {
        ...env,
        OTEL_SERVICE_NAME: "trace-client",
      });
      assert.equal(await client.exited, 0, client.log.join("\n"));
      // The client exported its span before it exited.
      assert.ok(
        rx.spans.some((s) => s.serviceName === "trace-client"),
        "client span not flushed at exit",
      );
      // The service's span is flushed when it exits on SIGTERM (Deno.exit after draining).
      svc.child.kill("SIGTERM");
      assert.equal(await svc.exited, 0, svc.log.join("\n"));
      assert.deepEqual(rx.problems, []);
      checkPair(rx.spans);
    });
  });
}

Deno.test("trace export: with a short OTEL_BSP_SCHEDULE_DELAY a running service exports without exiting", async () => {
  await withTopology("http/json", { OTEL_BSP_SCHEDULE_DELAY: "100" }, async (rx, svc, env) => {
    const client = await spawn(["eval", "--ext=ts", CLIENT], {
      ...env,
      OTEL_SERVICE_NAME: "trace-client",
    });
    assert.equal(await client.exited, 0, client.log.join("\n"));
    // Waits for the server span while the service keeps running; fails if it exits first.
    const got = await Promise.race([
      rx.waitFor((spans) => spans.some((s) => s.serviceName === "vmesh-disk-test")),
      svc.exited.then((code) => {
        throw new Error(`service exited (${code}) before exporting:\n${svc.log.join("\n")}`);
      }),
    ]);
    checkPair(got);
  });
});
