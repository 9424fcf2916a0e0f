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
