/**
 * `./vmesh boot` end to end with real processes (nats-server, console, disk, net and CPU
 * services) on small bare-metal guests built here with the Debian cross toolchain: the
 * guest's UART output reaches the console service, poweroff ends the run with 0, SIGINT
 * ends it with 130, and in both cases no process the launcher started is left behind.
 */
import assert from "node:assert/strict";
import { processGone } from "@vmesh/bus";
import { buildBareMetalElf, uartGuest } from "./bare_metal_elf.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** Process ids the launcher reported with --verbose ("started X (pid N)"). */
function startedPids(stderr: string): Map<string, number> {
  const pids = new Map<string, number>();
  for (const m of stderr.matchAll(/started (.+?) \(pid (\d+)\)/g)) pids.set(m[1], Number(m[2]));
  return pids;
}

function assertAllGone(pids: Map<string, number>, log: string) {
  for (const [what, pid] of pids) {
    assert.ok(processGone(pid), `${what} (pid ${pid}) left running\n${log}`);
  }
}

/** `vmesh boot --verbose --bios none ARGS` run by this Deno, stdin closed, no colour. */
function vmeshBoot(args: string[], stdio: Pick<Deno.CommandOptions, "stdout" | "stderr"> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "boot", "--verbose", "--bios", "none", ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
    ...stdio,
  });
}

Deno.test("vmesh boot: guest output, poweroff -> exit 0, every service stopped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-test-" });
  try {
    const elf = await buildBareMetalElf(
      dir,
      "hello",
      uartGuest("hello from a vmesh guest", "poweroff"),
    );
    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1 << 20));
    await Deno.writeFile(`${dir}/b.img`, new Uint8Array(1 << 20));
    const out = await vmeshBoot([
      "--kernel",
      elf,
      "--drive",
      `${dir}/a.img`,
      "--drive",
      `${dir}/b.img,ro`,
      "--nic",
      "switch=swtest",
      "--console",
      `log:${dir}/console.log`,
    ]).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    const pids = startedPids(stderr);
    for (
      const what of [
        "nats-server",
        "vmesh-console",
        "vmesh-disk disk0",
        "vmesh-disk disk1",
        "vmesh-net swtest",
        "vmesh-cpu",
      ]
    ) assert.ok(pids.has(what), `${what} was started\n${stderr}`);
    assert.match(stderr, /vmesh-cpu: guest powered off/);
    assert.equal(await Deno.readTextFile(`${dir}/console.log`), "hello from a vmesh guest\n");
    assertAllGone(pids, stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh boot: SIGINT stops every service (exit 130)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-test-" });
  try {
    const elf = await buildBareMetalElf(dir, "spin", uartGuest("spinning", "spin"));
    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1 << 20));
    const child = vmeshBoot(
      ["--kernel", elf, "--drive", `${dir}/a.img`, "--console", `log:${dir}/console.log`],
      { stdout: "null", stderr: "piped" },
    ).spawn();
    let stderr = "";
    let signalled = false;
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      // Interrupt once the CPU service runs the guest (its ready line).
      if (!signalled && /vmesh-cpu ready: /.test(stderr)) {
        signalled = true;
        child.kill("SIGINT");
      }
    }
    const status = await child.status;
    assert.ok(signalled, `the CPU service never became ready:\n${stderr}`);
    assert.equal(status.code, 130, stderr);
    assert.match(stderr, /interrupted: stopping every service/);
    const pids = startedPids(stderr);
    assert.equal(pids.size, 4, stderr); // nats-server, console, disk, cpu
    assertAllGone(pids, stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh boot: a failing CPU service (bad kernel) is one clear error, every service stopped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-test-" });
  try {
    await Deno.writeTextFile(`${dir}/not-an-elf`, "just text\n");
    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1 << 20));
    const out = await vmeshBoot([
      "--kernel",
      `${dir}/not-an-elf`,
      "--drive",
      `${dir}/a.img`,
      "--console",
      `log:${dir}/console.log`,
    ]).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, /not-an-elf: not an ELF file/);
    assertAllGone(startedPids(stderr), stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
