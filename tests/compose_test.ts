import assert from "node:assert/strict";
import { parseCompose } from "../cli/up.ts";
import {
  COMPOSE_NATS_CONFIG,
  composeLogins,
  composeNatsConfig,
  composeSecrets,
} from "../containers/bus_auth.ts";
import { PASSWORD_ENV, USER_ENV } from "@vmesh/bus";
import { startConfiguredNats } from "./nats_configured.ts";

const root = new URL("..", import.meta.url).pathname;
const logins = composeLogins(parseCompose(await Deno.readTextFile(`${root}compose.yaml`)));
/** The bus passwords compose needs (containers/bus_auth.ts writes them to .env). */
const secrets = composeSecrets(logins);

Deno.test("compose.yaml is valid for docker-compose and names every service", async () => {
  const out = await new Deno.Command("docker-compose", {
    args: ["-f", `${root}compose.yaml`, "config", "--services"],
    env: secrets,
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
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...secrets, ...env },
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

Deno.test("compose.yaml's bus: a login per service, the committed nats config, secrets from .env", async () => {
  // The committed config is what bus_auth.ts makes of compose.yaml today.
  const committed = await Deno.readTextFile(`${root}${COMPOSE_NATS_CONFIG}`);
  assert.equal(
    committed,
    composeNatsConfig(logins),
    "run deno run -A containers/bus_auth.ts --config",
  );
  assert.deepEqual(logins.map((l) => `${l.service}:${l.user}`), [
    "disk:disk-vm1-disk0",
    "console:console-vm1",
    "net:switch-default",
    "memory:memory",
    "cpu:cpu-vm1",
    "admin:admin",
  ]);
  // Each service logs in as its user with its variable's password; nats gets every variable.
  const config = async (env: Record<string, string>) => {
    const out = await new Deno.Command("docker-compose", {
      args: ["-f", `${root}compose.yaml`, "config"],
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }).output();
    return {
      ok: out.success,
      out: new TextDecoder().decode(out.stdout),
      err: new TextDecoder().decode(out.stderr),
    };
  };
  const r = await config(secrets);
  assert.ok(r.ok, r.err);
  const { parse } = await import("yaml");
  const services = parse(r.out).services as Record<string, { environment: Record<string, string> }>;
  for (const l of logins.filter((l) => l.service !== "admin")) {
    assert.equal(services[l.service].environment[USER_ENV], l.user, l.service);
    assert.equal(services[l.service].environment[PASSWORD_ENV], secrets[l.passwordVar], l.service);
  }
  for (const l of logins) {
    assert.equal(services.nats.environment[l.passwordVar], secrets[l.passwordVar]);
  }
  // Without the passwords compose refuses to run and says how to make them.
  const without = await config({});
  assert.equal(without.ok, false);
  assert.match(without.err, /VMESH_PW_\w+.*run deno run -A containers\/bus_auth\.ts/);

  // The config on a real nats-server (as the nats container runs it): each login works, an
  // anonymous client and a wrong password are refused, a missing password stops the start.
  const nats = await startConfiguredNats(`${root}${COMPOSE_NATS_CONFIG}`, secrets);
  try {
    const probe = async (...a: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--quiet", `${root}tests/nats_login_probe.ts`, nats.url, ...a],
        stdout: "piped",
      }).output();
      return new TextDecoder().decode(out.stdout).trim();
    };
    for (const l of logins) {
      assert.equal(await probe(l.user, secrets[l.passwordVar]), "connected", l.user);
    }
    assert.match(await probe(), /^refused: .*authorization/i);
    assert.match(await probe("cpu-vm1", secrets.VMESH_PW_DISK), /^refused: .*authorization/i);
  } finally {
    await nats.stop();
  }
  const { VMESH_PW_CPU: _, ...missing } = secrets;
  await assert.rejects(
    startConfiguredNats(`${root}${COMPOSE_NATS_CONFIG}`, missing),
    /variable reference for 'VMESH_PW_CPU'.*can not be found/,
  );
});
