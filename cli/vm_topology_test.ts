import assert from "node:assert/strict";
import { rolePermissions } from "@vmesh/bus";
import { parseNic } from "../services/cpu/cli_flags.ts";
import { DEFAULT_GATEWAY, DEFAULT_SUBNET, nicPort, vmTopology } from "./vm_topology.ts";

const spec = {
  name: "vmA",
  consoles: ["terminal", "log:/tmp/c.log"],
  drives: [
    { path: "/img/a.ext4", overlay: "/run/disk0.cow" },
    { path: "/img/b.qcow2", readOnly: true, format: "qcow2" },
  ],
  nics: [{ switch: "lan" }, { switch: "lan", mac: "52:54:00:00:00:02" }, { switch: "wan" }],
  memory: "262144K",
  engine: "jit",
  bios: "none",
  kernel: "/k.elf",
  append: "console=ttyS0",
};

Deno.test("vm topology: every service's command line", () => {
  const t = vmTopology(spec);
  assert.deepEqual(t.console.args, [
    "--vm",
    "vmA",
    "--backend",
    "terminal",
    "--backend",
    "log:/tmp/c.log",
  ]);
  assert.deepEqual(t.disks.map((d) => [d.label, d.args]), [
    [
      "vmesh-disk disk0",
      ["--vm", "vmA", "--device", "disk0", "--image", "/img/a.ext4", "--overlay", "/run/disk0.cow"],
    ],
    [
      "vmesh-disk disk1",
      [
        "--vm",
        "vmA",
        "--device",
        "disk1",
        "--image",
        "/img/b.qcow2",
        "--read-only",
        "--format",
        "qcow2",
      ],
    ],
  ]);
  // One switch service per distinct switch, on QEMU's user-network addresses.
  assert.deepEqual(
    t.switches.map((s) => s.args),
    ["lan", "wan"].map((sw) => [
      "--switch",
      sw,
      "--subnet",
      DEFAULT_SUBNET,
      "--gateway",
      DEFAULT_GATEWAY,
    ]),
  );
  assert.deepEqual(t.cpu.args, [
    "--vm",
    "vmA",
    "--memory",
    "262144K",
    "--engine",
    "jit",
    "--bios",
    "none",
    "--kernel",
    "/k.elf",
    "--append",
    "console=ttyS0",
    "--disk",
    "disk0",
    "--disk",
    "disk1",
    "--nic",
    "switch=lan",
    "--nic",
    "switch=lan,mac=52:54:00:00:00:02",
    "--nic",
    "switch=wan",
  ]);
  // The CPU service reads its --nic values back unchanged.
  const nics = t.cpu.args.flatMap((a, i) => t.cpu.args[i - 1] === "--nic" ? [parseNic(a)] : []);
  assert.deepEqual(nics, spec.nics);
  assert.deepEqual(
    [t.console, ...t.disks, ...t.switches].map((l) => l.registration),
    [
      { name: "vmesh-console", key: "vm", value: "vmA" },
      { name: "vmesh-disk", key: "device", value: "disk0" },
      { name: "vmesh-disk", key: "device", value: "disk1" },
      { name: "vmesh-net", key: "switch", value: "lan" },
      { name: "vmesh-net", key: "switch", value: "wan" },
    ],
  );
});

Deno.test("vm topology: each service's role covers its own subjects and no other VM's", () => {
  const t = vmTopology(spec);
  assert.deepEqual(t.cpu.role, {
    kind: "cpu",
    vm: "vmA",
    disks: ["disk0", "disk1"],
    ports: [
      { switch: "lan", port: "vmA-net0" },
      { switch: "lan", port: "vmA-net1" },
      { switch: "wan", port: "vmA-net2" },
    ],
  });
  assert.equal(nicPort("vmA", 2), "vmA-net2");
  const cpu = rolePermissions(t.cpu.role);
  assert.ok(cpu.publish.includes("vmesh.vmA.disk1.*"));
  assert.ok(cpu.subscribe.includes("vmesh.net.wan.port.vmA-net2.rx"));
  assert.deepEqual(t.disks.map((d) => d.role), [
    { kind: "disk", vm: "vmA", device: "disk0" },
    { kind: "disk", vm: "vmA", device: "disk1" },
  ]);
  assert.deepEqual(t.console.role, { kind: "console", vm: "vmA" });
  assert.deepEqual(t.switches.map((s) => s.role), [
    { kind: "switch", switch: "lan" },
    { kind: "switch", switch: "wan" },
  ]);
  const lan = rolePermissions(t.switches[0].role);
  assert.deepEqual(lan.publish, ["vmesh.net.lan.port.*.rx"]);
  assert.ok(lan.subscribe.includes("vmesh.net.lan.port.*.tx"));
  assert.deepEqual(t.launcher, { kind: "launcher", vm: "vmA" });
  for (const l of [t.console, ...t.disks, ...t.switches, t.cpu]) {
    const p = rolePermissions(l.role);
    for (const s of [...p.publish, ...p.subscribe]) {
      assert.ok(!/^vmesh\.(vmB|\*|>)/.test(s), `${l.label}: ${s}`);
    }
  }
});

Deno.test("vm topology: the agent's shape (no nics, no engine, optional append)", () => {
  const t = vmTopology({
    name: "h1vm",
    consoles: ["log:/x.log", "web:127.0.0.1:0"],
    drives: [],
    nics: [],
    memory: "128M",
    bios: "/fw.bin",
    kernel: "/Image",
    initrd: "/i.cpio",
  });
  assert.deepEqual(t.disks, []);
  assert.deepEqual(t.switches, []);
  assert.deepEqual(t.cpu.args, [
    "--vm",
    "h1vm",
    "--memory",
    "128M",
    "--bios",
    "/fw.bin",
    "--kernel",
    "/Image",
    "--initrd",
    "/i.cpio",
  ]);
});
