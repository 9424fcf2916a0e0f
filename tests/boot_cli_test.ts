/**
 * `./vmesh boot`'s command line: --help lists every flag, bad flags give one clear error
 * line and exit code 2 (before anything is started), and with --kernel nothing but the
 * missing data disk is built.
 */
import assert from "node:assert/strict";
import { BootUsageError, parseBootArgs } from "../cli/boot_args.ts";
import { ensureGuestImages, GUEST_CACHE_ENV } from "../guest/mod.ts";
import { bootBatch, bootCli as boot } from "./vmesh_boot.ts";

Deno.test("vmesh boot --help lists the flags", async () => {
  const r = await boot(["--help"]);
  assert.equal(r.code, 0, r.stderr);
  for (
    const flag of [
      "--bios PATH|none",
      "--kernel",
      "--initrd",
      "--append",
      "-m, --memory",
      "--smp",
      "--drive PATH[,ro]",
      "--nic switch=NAME",
      "--console terminal|log:PATH",
      "--disk-backend raw|cow",
      "--timeout",
      "--help",
      "-- COMMAND",
    ]
  ) assert.ok(r.stdout.includes(flag), `--help mentions ${flag}`);
});

Deno.test("vmesh boot: bad flags are one error line and exit code 2", async () => {
  const cases: [string[], RegExp][] = [
    [["--smp", "9"], /at most 8 harts/],
    [["--smp", "0"], /--smp needs a positive number of harts/],
    [["--frobnicate"], /unknown option --frobnicate/],
    [["--memory", "lots"], /bad memory size 'lots'/],
    [["-m", "2G"], /exceeds the supported \d+M/],
    [["--drive", "/nonexistent/disk.img"], /--drive \/nonexistent\/disk.img: no such file/],
    [["--drive", "x.img,rw"], /unknown option 'rw'/],
    [["--nic", "user"], /--nic user: .*want switch=NAME\[,mac=MAC\]/],
    [["--console", "serial"], /--console serial: want terminal or log:PATH/],
    [["--disk-backend", "qcow2"], /--disk-backend qcow2: want raw or cow/],
    [["--kernel"], /--kernel needs a value/],
    [["--"], /-- needs a COMMAND/],
    [["stray"], /unexpected argument stray/],
  ];
  for (const [args, want] of cases) {
    const r = await boot(args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `${args.join(" ")}: one line, got:\n${r.stderr}`);
    assert.match(lines[0], /^vmesh boot: /);
    assert.match(lines[0], want);
    assert.equal(r.stdout, "");
  }
});

Deno.test("boot arguments: QEMU names, repeatable drives/consoles, batch command", () => {
  const a = parseBootArgs([
    "--bios=none",
    "--kernel",
    "k.elf",
    "-m",
    "1G",
    "--drive",
    "a.img",
    "--drive",
    "b.img,ro",
    "--nic",
    "switch=sw0",
    "--console",
    "terminal",
    "--console",
    "log:/tmp/x.log",
    "--smp",
    "1",
    "--",
    "uname",
    "-a",
  ]);
  assert.equal(a.bios, null);
  assert.equal(a.kernel, "k.elf");
  assert.equal(a.memory, 1 << 30);
  assert.deepEqual(a.drives, [{ path: "a.img", readOnly: false }, {
    path: "b.img",
    readOnly: true,
  }]);
  assert.deepEqual(a.nics, [{ switch: "sw0" }]);
  assert.deepEqual(a.consoles, ["terminal", "log:/tmp/x.log"]);
  assert.equal(a.command, "uname -a");
  assert.equal(a.smp, 1);
  assert.equal(parseBootArgs(["--smp", "4"]).smp, 4);
  assert.throws(() => parseBootArgs(["--smp", "9"]), BootUsageError);
  assert.equal(parseBootArgs(["--smp", "2", "--smp-threads"]).smpThreads, true);
  assert.throws(
    () => parseBootArgs(["--smp", "2", "--smp-threads", "-s"]),
    /--smp-threads cannot be combined with --gdb/,
  );
  assert.equal(parseBootArgs(["-m", "512"]).memory, 512 << 20);
  assert.deepEqual(parseBootArgs(["--nic", "switch=lan,mac=52:54:00:aa:bb:0c"]).nics, [
    { switch: "lan", mac: "52:54:00:aa:bb:0c" },
  ]);
  assert.throws(() => parseBootArgs(["--nic", "switch=lan,mac=52:54"]), BootUsageError);
});

Deno.test("vmesh boot --kernel --initrd: no kernel build, only the data disk is made", async () => {
  const images = await ensureGuestImages();
  const cache = await Deno.makeTempDir({ prefix: "vmesh-boot-cache-" });
  try {
    const env = { [GUEST_CACHE_ENV]: cache };
    const given = ["--kernel", images.kernel, "--initrd", images.initramfs];
    const r = await bootBatch(given, "uname -m; head -c 28 /dev/vda", env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^riscv64\n/);
    assert.doesNotMatch(r.stderr, /guest images|kernel…|busybox…/);
    assert.match(r.stderr, /data disk: .*no kernel build/);
    assert.match(
      r.stderr,
      /firmware \/usr\/lib\/riscv64-linux-gnu\/opensbi\/generic\/fw_jump\.bin/,
    );
    const made: string[] = [];
    for await (const e of Deno.readDir(cache)) made.push(e.name);
    assert.deepEqual(made.filter((n) => n !== "logs").map((n) => n.replace(/-.*/, "")), ["data"]);

    // With a --drive as well nothing at all is built: the cache stays as it was.
    const again = await bootBatch(
      [
        ...given,
        "--drive",
        `${cache}/${made.find((n) => n !== "logs")}/data.ext4,ro`,
      ],
      "true",
      {
        [GUEST_CACHE_ENV]: `${cache}/unused`,
      },
    );
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /data disk: |guest images/);
    assert.equal(await Deno.stat(`${cache}/unused`).then(() => true, () => false), false);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
