import assert from "node:assert/strict";
import { deviceTreeBlob } from "./device_tree.ts";
import { FDT_MAGIC } from "./fdt.ts";
import { VIRT_DEVICES } from "./memory_map.ts";

const MiB = 1024 * 1024;

/** Runs a command, returning stdout; fails the test with stderr on a nonzero exit. */
async function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  const res = { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  assert.equal(out.code, 0, `${cmd} ${args.join(" ")} failed: ${res.stderr}`);
  return res;
}

/** Parses dtc's DTS output into node path -> property name -> value text. */
function parseDts(text: string): Map<string, Map<string, string>> {
  const nodes = new Map<string, Map<string, string>>();
  const stack: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    let m;
    if (line.startsWith("/dts-v1/")) continue;
    if ((m = line.match(/^([^\s=]+) \{$/))) {
      stack.push(m[1] === "/" ? "" : m[1]);
      nodes.set("/" + stack.filter((n) => n).join("/"), new Map());
    } else if (line === "};") {
      stack.pop();
    } else if ((m = line.match(/^([^\s=]+)(?: = (.*))?;$/))) {
      nodes.get("/" + stack.filter((n) => n).join("/"))!.set(m[1], m[2] ?? "");
    }
  }
  return nodes;
}

async function dtbToNodes(path: string): Promise<Map<string, Map<string, string>>> {
  const { stdout, stderr } = await run("dtc", ["-I", "dtb", "-O", "dts", path]);
  return Object.assign(parseDts(stdout), { warnings: stderr });
}

Deno.test("device tree blob is a valid DTB v17 that dtc decodes", async () => {
  const dtb = deviceTreeBlob({
    harts: 1,
    ramSize: 128 * MiB,
    regions: VIRT_DEVICES,
    bootargs: "console=ttyS0",
    initrd: { start: 0x8800_0000, end: 0x8810_0000 },
  });
  const dv = new DataView(dtb.buffer);
  assert.equal(dv.getUint32(0), FDT_MAGIC);
  assert.equal(dv.getUint32(4), dtb.length);
  assert.equal(dv.getUint32(20), 17);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/ours.dtb`, dtb);
    const { stdout, stderr } = await run("dtc", ["-I", "dtb", "-O", "dts", `${dir}/ours.dtb`]);
    // The only warning is the one QEMU's own tree gets too (cpu-intc has no #address-cells).
    for (const w of stderr.trim().split("\n").filter((l) => l)) {
      assert.match(w, /interrupt-controller: Missing #address-cells in interrupt provider/);
    }
    const nodes = parseDts(stdout);
    const chosen = nodes.get("/chosen")!;
    assert.equal(chosen.get("bootargs"), '"console=ttyS0"');
    assert.equal(chosen.get("stdout-path"), '"/soc/serial@10000000"');
    assert.equal(chosen.get("linux,initrd-start"), "<0x00 0x88000000>");
    assert.equal(chosen.get("linux,initrd-end"), "<0x00 0x88100000>");
    assert.equal(nodes.get("/memory@80000000")!.get("reg"), "<0x00 0x80000000 0x00 0x8000000>");
    assert.equal(
      nodes.get("/cpus/cpu@0")!.get("riscv,isa"),
      '"rv64imafdc_zicsr_zifencei_sstc"',
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const harts of [1, 4]) {
  Deno.test(`device tree matches qemu-system-riscv64 -M virt -smp ${harts} for every node we generate`, async () => {
    const dir = await Deno.makeTempDir();
    try {
      await run("qemu-system-riscv64", [
        "-M",
        `virt,dumpdtb=${dir}/qemu.dtb`,
        "-m",
        "128M",
        "-smp",
        String(harts),
        "-nographic",
        "-bios",
        "none",
      ]);
      await Deno.writeFile(
        `${dir}/ours.dtb`,
        deviceTreeBlob({ harts, ramSize: 128 * MiB, regions: VIRT_DEVICES }),
      );
      const qemu = await dtbToNodes(`${dir}/qemu.dtb`);
      const ours = await dtbToNodes(`${dir}/ours.dtb`);
      // Properties where QEMU 7.2 differs on purpose: its ISA string lists H and bitmanip.
      const differs = new Set(
        Array.from({ length: harts }, (_, h) => `/cpus/cpu@${h}:riscv,isa`),
      );
      let compared = 0;
      for (const [path, props] of ours) {
        const q = qemu.get(path);
        assert.ok(q, `QEMU has no node ${path}`);
        for (const [name, value] of props) {
          if (differs.has(`${path}:${name}`)) continue;
          assert.equal(value, q.get(name), `${path} ${name}`);
          compared++;
        }
        // Every property QEMU puts on the node is present on ours (except rng-seed).
        for (const name of q.keys()) {
          if (name === "rng-seed") continue;
          assert.ok(props.has(name), `${path} lacks ${name}`);
        }
      }
      assert.ok(compared > 50, `compared only ${compared} properties`);
      // The devices QEMU describes that we model are all there.
      for (
        const p of [
          "/soc/clint@2000000",
          "/soc/plic@c000000",
          "/soc/serial@10000000",
          "/soc/test@100000",
          "/soc/rtc@101000",
          "/poweroff",
          "/reboot",
          ...Array.from({ length: harts }, (_, h) => `/cpus/cpu@${h}/interrupt-controller`),
          `/cpus/cpu-map/cluster0/core${harts - 1}`,
        ]
      ) assert.ok(ours.has(p), p);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
