/**
 * A Linux VM through the control plane: `./vmesh create --image linux`, the control service
 * places it, the host agent starts its console, disk and CPU service processes (the agent's
 * VM start path end to end), the guest boots to its shell, and `./vmesh console` types a
 * command into it and shows the answer after the boot log; `rm -f` ends it and its files.
 */
import assert from "node:assert/strict";
import { control } from "@vmesh/bus";
import { ensureGuestImages } from "../guest/mod.ts";
import { controlClient, vmeshCli } from "./control_harness.ts";
import { type ServiceProcess, startService, startTestBus } from "./services_harness.ts";

const CLI = new URL("../cli/main.ts", import.meta.url).pathname;

Deno.test({
  name: "control plane: a Linux VM placed, booted to its shell, reached by ./vmesh console",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-control-linux-" });
  const tb = await startTestBus();
  const procs: ServiceProcess[] = [];
  try {
    const url = tb.nats.url;
    procs.push(
      await startService("agent", ["--host", "h1", "--ram", "1024", "--dir", `${dir}/h1`], url),
    );
    procs.push(await startService("control", ["--http", "off"], url));
    const ctl = controlClient(tb.bus, 180_000);
    for (let i = 0; (await ctl.call("hosts", {})).hosts.length === 0; i++) {
      assert.ok(i < 100, "the agent never announced itself");
      await new Promise((r) => setTimeout(r, 100));
    }
    // Through the CLI: --image linux is the cached guest (OpenSBI, kernel, initramfs, data disk).
    const made = await vmeshCli(
      url,
      "create",
      "--image",
      "linux",
      "-m",
      "256M",
      "-o",
      "json",
      "linux1",
    );
    assert.equal(made.code, 0, made.err);
    const vm = JSON.parse(made.out) as control.VmInfo & {
      state: string;
    };
    assert.equal(vm.state, "running");
    assert.deepEqual(vm.boot, {
      bios: images.firmware,
      kernel: images.kernel,
      initrd: images.initramfs,
      append: "console=ttyS0",
      disk: images.disk,
      snapshot: "",
    });
    // The disk quota defaults to the data disk's size (64 MiB), the most its overlay can take.
    assert.deepEqual(vm.quota, { harts: 1, ramMib: 256, diskMib: 64, cpuShares: 0 });
    assert.equal(vm.host, "h1");
    // The data disk is served through a copy-on-write overlay in the agent's dir.
    assert.ok((await Deno.stat(`${dir}/h1/linux1.disk0.cow`)).isFile);
    for (let i = 0;; i++) {
      const { text } = await ctl.call("logs", { name: "linux1" });
      if (text.includes("vmesh-guest: shell ready")) break;
      assert.ok(i < 1200, `no shell after 120 s:\n${text.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--quiet", CLI, "console", "linux1"],
      env: { NATS_URL: url, NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode("echo control-$((6*7))\n"));
    await new Promise((r) => setTimeout(r, 3000));
    await w.close();
    const o = await child.output();
    const out = new TextDecoder().decode(o.stdout);
    assert.equal(o.code, 0, new TextDecoder().decode(o.stderr));
    assert.match(new TextDecoder().decode(o.stderr), /Connected to VM linux1 on h1/);
    // The scrollback, then the typed command's answer.
    assert.match(out, /Linux version 6\.1/);
    assert.match(out, /\ncontrol-42\r?\n/);
    const removed = await ctl.call("rm", { name: "linux1", force: true });
    assert.equal(removed.name, "linux1");
    assert.deepEqual((await ctl.call("list", {})).vms, []);
    const left: string[] = [];
    for await (const e of Deno.readDir(`${dir}/h1`)) left.push(e.name);
    assert.deepEqual(left, []);
  } finally {
    for (const p of procs.reverse()) await p.stop().catch(() => {});
    await tb.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
