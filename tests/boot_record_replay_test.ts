/**
 * `./vmesh boot --record` / `--replay` with real services: a Linux boot with a disk and a nic
 * runs a disk workload (reads, random writes with fsync, a read-back) and a network one (DHCP,
 * pings to the switch's gateway) while the CPU service records it; the recording is replayed
 * twice in-process with no bus and no device service: the same command output, every
 * checkpoint and the end state equal, the logged block replies and frames applied. A tampered
 * checkpoint stops a replay there.
 */
import assert from "node:assert/strict";
import { bootBatch } from "./vmesh_boot.ts";
import { parseBootArgs } from "../cli/boot_args.ts";
import { encodeLog, parseLog } from "../services/cpu/replay/log_format.ts";

const NO_BUS = { NATS_URL: "nats://127.0.0.1:1" };
const WORKLOAD = "dd if=/dev/vda bs=64k count=16 2>/dev/null | md5sum | cut -c1-12; " +
  "dd if=/dev/urandom of=/dev/vda bs=4k count=64 seek=2048 conv=fsync 2>/dev/null; " +
  "dd if=/dev/vda bs=4k count=64 skip=2048 2>/dev/null | md5sum | cut -c1-12; " +
  "udhcpc -i eth0 -q -n -t 10 -T 2 >/dev/null 2>&1; " +
  "ping -c 3 -W 2 10.0.2.2 | grep -c 'bytes from'";

Deno.test("vmesh boot --record/--replay: a Linux boot with disk and network I/O replays without services", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-rr-" });
  try {
    const log = `${dir}/boot.log`;
    const flags = ["--nic", "switch=rr0", "--checkpoint-every", "10000000"];
    const rec = await bootBatch([...flags, "--record", log], WORKLOAD);
    assert.equal(rec.code, 0, rec.stderr);
    const lines = rec.stdout.trim().split("\n");
    assert.equal(lines.length, 3, rec.stdout);
    assert.equal(lines[2].trim(), "3", `three pings answered: ${rec.stdout}`);
    const recorded = /recorded .*: (\d+) checkpoints, (\d+) instructions/.exec(rec.stderr);
    assert.ok(recorded && Number(recorded[1]) >= 5, rec.stderr);

    for (let i = 0; i < 2; i++) {
      // No bus at all: a boot that tried one would fail on this address.
      const rep = await bootBatch(["--replay", log, ...flags], WORKLOAD, NO_BUS);
      assert.equal(rep.code, 0, rep.stderr);
      assert.equal(rep.stdout, rec.stdout, `replay ${i + 1}: the same output`);
      const m = /matched (\d+) checkpoints \((\d+) instructions, (\d+) block replies, (\d+) frames/
        .exec(rep.stderr);
      assert.ok(m, rep.stderr);
      assert.equal(Number(m[1]), Number(recorded[1]) + 1, "every checkpoint and the end state");
      assert.equal(m[2], recorded[2], "the same instruction count");
      assert.ok(Number(m[3]) > 0 && Number(m[4]) > 0, rep.stderr);
    }

    // A checkpoint that differs stops the replay there, saying so.
    const { header, entries } = parseLog(await Deno.readFile(log), log);
    const at = entries.findIndex((e) => "h" in e);
    const cp = entries[at] as { h: string };
    cp.h = "00000000" + cp.h.slice(8);
    const tampered = `${dir}/tampered.log`;
    await Deno.writeFile(tampered, encodeLog(header, entries));
    const bad = await bootBatch(["--replay", tampered, ...flags], WORKLOAD, NO_BUS);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(`diverged at step ${entries[at].s}: recorded 00000000`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("vmesh boot --record/--replay: flags that cannot be recorded are refused before anything runs", () => {
  assert.equal(parseBootArgs(["--record", "x.log"]).engine, "interp");
  assert.throws(
    () => parseBootArgs(["--record", "x.log", "--engine", "jit"]),
    /--record\/--replay run the interpreter .*: drop --engine jit/,
  );
  assert.throws(
    () => parseBootArgs(["--replay", "x.log", "--snapshot-every", "1000"]),
    /are for reverse execution: give --replay FILE and --gdb/,
  );
  const o = parseBootArgs(["--replay", "x.log", "--gdb", "tcp::0", "--snapshot-memory", "64"]);
  assert.equal(o.snapshotMemoryMiB, 64);
});
