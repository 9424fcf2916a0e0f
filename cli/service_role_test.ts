import assert from "node:assert/strict";
import { rolePermissions } from "@vmesh/bus";
import { parseCompose } from "./up.ts";
import { serviceRole } from "./service_role.ts";
import { vmTopology } from "./vm_topology.ts";

Deno.test("service role: read back from every command line vm_topology makes", () => {
  const t = vmTopology({
    name: "vmR",
    consoles: ["terminal"],
    drives: [{ path: "/a.img" }, { path: "/b.img", readOnly: true }],
    nics: [{ switch: "lan" }, { switch: "wan", mac: "52:54:00:00:00:09" }],
    memory: "256M",
    bios: "none",
    kernel: "/k.elf",
  });
  for (const l of [t.console, ...t.disks, ...t.switches, t.cpu]) {
    assert.deepEqual(serviceRole(l.service, l.args), l.role, l.label);
  }
});

Deno.test("service role: compose.yaml's services", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const services = parseCompose(await Deno.readTextFile(`${root}compose.yaml`));
  const role = (name: string) => {
    const s = services.get(name)!;
    return serviceRole(name, s.command, s.environment);
  };
  assert.deepEqual(role("disk"), { kind: "disk", vm: "vm1", device: "disk0" });
  assert.deepEqual(role("console"), { kind: "console", vm: "vm1" });
  assert.deepEqual(role("net"), { kind: "switch", switch: "default" });
  assert.deepEqual(role("memory"), { kind: "memory" });
  assert.deepEqual(role("cpu"), {
    kind: "cpu",
    vm: "vm1",
    disks: ["disk0"],
    ports: [{ switch: "default", port: "vm1-net0" }],
  });
  // The control plane ./vmesh up adds (cli/up.ts withControlPlane).
  assert.deepEqual(serviceRole("control", ["--http", "0"]), { kind: "control" });
  assert.deepEqual(serviceRole("agent", ["--host", "h1", "--dir", "/x"]), {
    kind: "agent",
    host: "h1",
  });
});

Deno.test("service role: defaults, = forms, several switches, unknown services", () => {
  assert.deepEqual(serviceRole("disk", ["--image=/x"], { VMESH_VM: "envvm" }), {
    kind: "disk",
    vm: "envvm",
    device: "disk0",
  });
  assert.deepEqual(serviceRole("console", ["--vm=v2"]), { kind: "console", vm: "v2" });
  const net = serviceRole("net", ["--switch", "a", "--mode", "hub", "--switch=b"]);
  assert.deepEqual(net, { kind: "net", switches: ["a", "b"] });
  const p = rolePermissions(net!);
  assert.deepEqual(p.publish, ["vmesh.net.a.port.*.rx", "vmesh.net.b.port.*.rx"]);
  assert.ok(p.subscribe.includes("vmesh.net.b.port.*.tx"));
  assert.ok(p.subscribe.includes("_INBOX.net-a-b.>"));
  assert.equal(serviceRole("jaeger", []), undefined);
});
