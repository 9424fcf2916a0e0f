/**
 * compose.yaml for real, in containers: rootful podman builds every image FROM a local
 * debootstrap base (no registry is reachable here), podman-compose runs the topology with
 * containers/compose.podman.yaml, the VM boots to the guest shell, and one guest disk read
 * arrives as one trace (CPU span -> bus client -> disk server) at the test OTLP receiver,
 * which stands in for the jaeger service (no Jaeger image exists here). The host talks to the
 * published ports as a user would: the CPU control API on 8080.
 *
 * Ignored, with the reason in the test name, where podman, podman-compose, runc, debootstrap
 * or root are missing.
 */
import assert from "node:assert/strict";
import { ComposeProject, ensureBaseImage, podmanEnv } from "../containers/mod.ts";
import { ensureGuestImages, GUEST_SHELL_MARKER } from "../guest/mod.ts";
import { OtlpSpanKind, type ReceivedSpan, startOtlpReceiver } from "./otlp_receiver.ts";
import { forwardTcp } from "./compose_tcp_forward.ts";
import { skippableName } from "../cli/test_summary.ts";
import { parseCompose } from "../cli/up.ts";
import { composeLogins, composeSecrets } from "../containers/bus_auth.ts";

const PROJECT = "vmeshtest";
/** Host ports compose.yaml publishes for the services this test starts (nats, cpu). */
const PUBLISHED = [4222, 8080];

async function missingPrerequisite(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return "needs root (rootful podman, debootstrap)";
  const missing: string[] = [];
  for (
    const [cmd, pkg] of [
      ["podman", "podman"],
      ["podman-compose", "podman-compose"],
      ["runc", "runc"],
      ["debootstrap", "debootstrap"],
    ]
  ) {
    const found = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`] }).output();
    if (!found.success) missing.push(pkg);
  }
  try {
    await Deno.stat("/usr/lib/cni/dnsname");
  } catch {
    missing.push("golang-github-containernetworking-plugin-dnsname");
  }
  return missing.length
    ? `not installed: ${missing.join(", ")}; apt-get install ${missing.join(" ")}`
    : undefined;
}

/** The first `virtio-blk read` of the CPU service with its bus client and disk server spans. */
function readChain(spans: ReceivedSpan[]) {
  for (const cpu of spans) {
    if (cpu.name !== "virtio-blk read" || cpu.serviceName !== "vmesh-cpu") continue;
    const client = spans.find((s) => s.parentSpanId === cpu.spanId && s.traceId === cpu.traceId);
    if (!client) continue;
    const server = spans.find((s) => s.parentSpanId === client.spanId && s.traceId === cpu.traceId);
    if (server) return { cpu, client, server };
  }
  return undefined;
}

function assertPortFree(port: number) {
  try {
    Deno.listen({ hostname: "0.0.0.0", port }).close();
  } catch (e) {
    if (!(e instanceof Deno.errors.AddrInUse)) throw e;
    throw new Error(`host port ${port} is in use; compose.yaml publishes it: stop that process`);
  }
}

/** Polls `check` every 500 ms until it returns a value or `ms` pass (then `why()` throws). */
async function until<T>(
  ms: number,
  check: () => Promise<T | undefined>,
  why: () => Promise<string>,
) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(await why());
}

const missing = await missingPrerequisite();

Deno.test({
  name: skippableName(
    "compose (podman): local images build, compose.yaml boots the VM, a disk read is one trace",
    missing,
  ),
  ignore: missing !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  for (const p of PUBLISHED) assertPortFree(p);
  const tmp = await Deno.makeTempDir({ prefix: "vmesh-compose-" });
  const env = await podmanEnv(tmp);
  const t = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`;
  let t0 = performance.now();
  const base = await ensureBaseImage({ env });
  console.log(`base image ${base.image}: ${base.built ? `built in ${t(t0)}` : "cached"}`);
  const images = await ensureGuestImages();
  const rx = startOtlpReceiver();
  const project = new ComposeProject({ name: PROJECT, env });
  await project.down(); // what an interrupted earlier run left
  let fwd: ReturnType<typeof forwardTcp> | undefined;
  const diagnosis = async () =>
    `containers:\n${await project.status()}\n` +
    (await Promise.all(
      ["nats", "guest", "disk", "console", "net", "memory", "cpu"].map(async (s) =>
        `--- ${s}:\n${(await project.logs(s)).trim().split("\n").slice(-12).join("\n")}`
      ),
    )).join("\n");
  try {
    const gateway = await project.createNetwork();
    Object.assign(env, { VMESH_BASE_IMAGE: base.image, VMESH_GUEST_IMAGES: images.dir });
    // The bus logins' passwords, as containers/bus_auth.ts writes them to .env.
    Object.assign(
      env,
      composeSecrets(
        composeLogins(
          parseCompose(await Deno.readTextFile(new URL("../compose.yaml", import.meta.url))),
        ),
      ),
    );
    t0 = performance.now();
    await project.run("build");
    console.log(`podman-compose build (nats, guest, 5 services): ${t(t0)}`);

    t0 = performance.now();
    // The guest service first: it fills the images volume, and its start brings up the network
    // bridge whose gateway address (host.containers.internal) the forwarder listens on.
    await project.run("up", "-d", "guest");
    const copied = await project.podman(["wait", project.container("guest")]);
    assert.equal(copied.stdout.trim(), "0", `guest copy failed\n${await diagnosis()}`);
    fwd = forwardTcp(gateway, Number(new URL(rx.endpoint).port));
    env.VMESH_OTLP_ENDPOINT = `http://host.containers.internal:${fwd.port}`;
    // cpu and its depends_on (nats, guest, disk, console, net), plus memory; not jaeger.
    await project.run("up", "-d", "cpu", "memory");
    console.log(`podman-compose up -d: ${t(t0)}`);

    const console_ = await until(
      180_000,
      async () => {
        const log = await project.logs("console");
        return log.includes(GUEST_SHELL_MARKER) ? log : undefined;
      },
      async () => `the guest shell never appeared on the console container\n${await diagnosis()}`,
    );
    console.log(`guest shell on the console container ${t(t0)} after up`);
    assert.match(console_, /Linux version \d+\.\d+/);

    // The host as a user: the CPU control API through the published port.
    const vm = await (await fetch("http://127.0.0.1:8080/vm")).json();
    assert.equal(vm.vm, "vm1");
    assert.equal(vm.state, "RUNNING", JSON.stringify(vm));
    const disk0 = vm.devices.find((d: { device: string }) => d.device === "disk0");
    assert.deepEqual(
      [disk0?.kind, disk0?.subject, disk0?.connected],
      ["virtio-blk", "vmesh.vm1.disk0", true],
    );
    for (const s of ["nats", "disk", "console", "net", "memory", "cpu"]) {
      const st = await project.podman([
        "inspect",
        "-f",
        "{{.State.Status}}",
        project.container(s),
      ]);
      assert.equal(st.stdout.trim(), "running", `${s}\n${await diagnosis()}`);
      // Images run from what the build put in them (deno run --cached-only): no fetch at run time.
      assert.doesNotMatch(await project.logs(s), /Download https?:/, `${s} downloaded at run time`);
    }

    // Deno exports spans in batches (every 5 s by default).
    let timer: ReturnType<typeof setTimeout> | undefined;
    const spans = await Promise.race([
      rx.waitFor((s) => readChain(s) !== undefined),
      new Promise<never>((_, reject) => {
        timer = setTimeout(async () =>
          reject(
            new Error(
              `no virtio-blk read -> client -> server chain in 60 s; spans: ` +
                JSON.stringify([...new Set(rx.spans.map((s) => `${s.serviceName}: ${s.name}`))]) +
                `; problems: ${rx.problems}; relayed connections: ${fwd?.connections}\n` +
                await diagnosis(),
            ),
          ), 60_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const { cpu, client, server } = readChain(spans)!;
    assert.deepEqual(rx.problems, []);
    assert.equal(cpu.kind, OtlpSpanKind.INTERNAL);
    assert.equal(client.kind, OtlpSpanKind.CLIENT);
    assert.equal(client.serviceName, "vmesh-cpu");
    assert.equal(server.kind, OtlpSpanKind.SERVER);
    // compose.yaml sets OTEL_SERVICE_NAME per service (vmesh-<name>, as ./vmesh up does).
    assert.equal(server.serviceName, "vmesh-disk");
    assert.match(cpu.traceId, /^[0-9a-f]{32}$/);
    assert.equal(server.traceId, cpu.traceId);
    console.log(
      `trace ${cpu.traceId}: ${cpu.name} -> ${client.name} -> ${server.serviceName} ${server.name}` +
        ` (${rx.spans.length} spans from ${
          [...new Set(rx.spans.map((s) => s.serviceName))].sort().join(", ")
        })`,
    );
  } finally {
    t0 = performance.now();
    await project.down();
    console.log(`podman-compose down: ${t(t0)}`);
    await fwd?.close();
    await rx.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
