import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;

Deno.test("compose.yaml is valid for docker-compose and names every service", async () => {
  const out = await new Deno.Command("docker-compose", {
    args: ["-f", `${root}compose.yaml`, "config", "--services"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const services = new TextDecoder().decode(out.stdout).trim().split("\n").sort();
  for (const s of ["cpu", "disk", "console", "net", "memory", "nats", "jaeger"]) {
    assert.ok(services.includes(s), `compose.yaml lacks service ${s}: ${services.join(",")}`);
  }
  for (const s of ["cpu", "disk", "console", "net", "memory"]) {
    assert.ok(
      (await Deno.stat(`${root}services/${s}/Dockerfile`)).isFile,
      `services/${s}/Dockerfile missing`,
    );
  }
});

Deno.test("containers/compose.podman.yaml merges onto compose.yaml: local base, no registry image left", async () => {
  const config = (env: Record<string, string>) =>
    new Deno.Command("docker-compose", {
      args: ["-f", `${root}compose.yaml`, "-f", `${root}containers/compose.podman.yaml`, "config"],
      // Only PATH from outside: a VMESH_GUEST_IMAGES exported by the user must not leak in.
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
  const out = await config({ VMESH_GUEST_IMAGES: "/srv/guest" });
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const { parse } = await import("yaml");
  const services = parse(text).services as Record<string, Record<string, unknown>>;
  for (const s of ["cpu", "disk", "console", "net", "memory"]) {
    const build = services[s].build as { args?: Record<string, string>; dockerfile: string };
    assert.equal(build.dockerfile, `services/${s}/Dockerfile`);
    assert.deepEqual(build.args, { BASE: "localhost/vmesh-base:bookworm", DEPS: "context" });
    const env = services[s].environment as Record<string, string>;
    assert.equal(env.OTEL_SERVICE_NAME, `vmesh-${s}`);
    assert.equal(env.OTEL_EXPORTER_OTLP_ENDPOINT, "http://jaeger:4318");
  }
  assert.equal(services.nats.image, "localhost/vmesh-nats:2.9.10");
  assert.ok((services.guest.volumes as string[]).includes("/srv/guest:/images-built:ro"));
  // Only jaeger still names a registry image (it is left out: `up cpu`).
  const fromRegistry = Object.entries(services)
    .filter(([, s]) => typeof s.image === "string" && !String(s.image).startsWith("localhost/"))
    .map(([n]) => n);
  assert.deepEqual(fromRegistry, ["jaeger"]);

  const unset = await config({});
  assert.equal(unset.success, false, "VMESH_GUEST_IMAGES unset must be an error");
  assert.match(new TextDecoder().decode(unset.stderr), /VMESH_GUEST_IMAGES/);
});
