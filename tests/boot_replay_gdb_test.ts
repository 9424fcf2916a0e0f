/**
 * Reverse execution on `vmesh boot --replay FILE --gdb`, with the real client: a Linux boot
 * whose command reads and writes its disk (fsync'd) is recorded with real services, then
 * replayed with no bus and no service under Debian's gdb-multiarch. gdb continues to the end
 * of the recording's history, breaks at the kernel's trap entry (`handle_exception`, found in
 * the Image by its first instruction and checked against `stvec`), reverse-continues to its
 * last hit, steps and reverse-steps (every register back), reverse-continues to the hit again,
 * then runs the guest to its end: every checkpoint matches and the command's output is the
 * recorded one, though block replies were applied again after each travel back. The snapshots
 * are capped below what they would hold, so older ones are thinned out meanwhile.
 */
import assert from "node:assert/strict";
import { bootBatch } from "./vmesh_boot.ts";
import { gdbBatch, gdbInstalled, startWithGdbStub } from "./gdb_session.ts";
import { skippableName } from "../cli/test_summary.ts";
import { ensureGuestImages } from "../guest/mod.ts";
import { parseLog } from "../services/cpu/replay/log_format.ts";

const NO_BUS = { NATS_URL: "nats://127.0.0.1:1" };
const WORKLOAD = "dd if=/dev/vda bs=64k count=16 2>/dev/null | md5sum | cut -c1-12; " +
  "dd if=/dev/urandom of=/dev/vda bs=4k count=16 seek=2048 conv=fsync 2>/dev/null; " +
  "dd if=/dev/vda bs=4k count=16 skip=2048 2>/dev/null | md5sum | cut -c1-12";
/** Where the riscv64 kernel's Image is mapped (Linux 6.1, Sv39: KERNEL_LINK_ADDR). */
const KERNEL_VA = 0xffffffff80000000n;
/** `csrrw tp, sscratch, tp`: handle_exception's first instruction (arch/riscv/kernel/entry.S). */
const CSRRW_TP_SSCRATCH = 0x14021273;

/** The kernel virtual address of handle_exception: the one `csrrw tp, sscratch, tp` in the Image. */
async function handleException(image: string): Promise<bigint> {
  const b = await Deno.readFile(image);
  const v = new DataView(b.buffer);
  const at: number[] = [];
  for (let i = 0; i + 4 <= b.length; i += 2) {
    if (v.getUint32(i, true) === CSRRW_TP_SSCRATCH) at.push(i);
  }
  assert.equal(at.length, 1, `one csrrw tp, sscratch, tp in the Image, found at ${at}`);
  return KERNEL_VA + BigInt(at[0]);
}

/** The registers of each `info registers` dump gdb printed, in order. */
function dumps(out: string): Map<string, string>[] {
  const all: Map<string, string>[] = [];
  for (const line of out.split("\n")) {
    const m = /^(pc|ra|sp|gp|tp|t0|a0|a1|a7|scause|sepc)\s+(0x[0-9a-f]+)/.exec(line);
    if (!m) continue;
    if (m[1] === "pc") all.push(new Map());
    all.at(-1)?.set(m[1], m[2]);
  }
  return all;
}

Deno.test({
  name: skippableName(
    "vmesh boot --replay --gdb: reverse-stepi and reverse-continue on a Linux boot with disk I/O",
    gdbInstalled ? undefined : "gdb-multiarch not installed (apt-get install gdb-multiarch)",
  ),
  ignore: !gdbInstalled,
  async fn() {
    const images = await ensureGuestImages();
    const entry = await handleException(images.kernel);
    const dir = await Deno.makeTempDir({ prefix: "vmesh-boot-rgdb-" });
    try {
      const log = `${dir}/boot.log`;
      const flags = ["--checkpoint-every", "10000000"];
      const rec = await bootBatch([...flags, "--record", log], WORKLOAD);
      assert.equal(rec.code, 0, rec.stderr);
      assert.equal(rec.stdout.trim().split("\n").length, 2, rec.stdout);
      const recorded = /recorded .*: (\d+) checkpoints, (\d+) instructions/.exec(rec.stderr);
      assert.ok(recorded, rec.stderr);

      const vm = await startWithGdbStub(
        [
          "boot",
          "--replay",
          log,
          ...flags,
          "--snapshot-every",
          "10000000",
          "--snapshot-memory", // less than the snapshots would hold: older ones are thinned
          "16",
          "--gdb",
          "tcp:127.0.0.1:0",
          "-S",
          "--",
          WORKLOAD,
        ],
        150_000,
        undefined,
        NO_BUS,
      );
      const regs = "info registers pc ra sp gp tp t0 a0 a1 a7 scause sepc";
      const out = await gdbBatch(null, vm.port, [
        "continue", // no breakpoint: to the top of the recording's last batch
        `break *0x${entry.toString(16)}`,
        "reverse-continue", // the last trap before the end
        regs,
        "print/x $stvec",
        "stepi",
        "stepi",
        regs,
        "reverse-stepi",
        "reverse-stepi",
        regs,
        "stepi",
        "stepi",
        "stepi",
        "reverse-continue",
        regs,
        "delete",
        "continue", // the end of the history again
        "continue", // the guest powers off
      ]);
      const vmOut = await vm.done;
      const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
      assert.match(out, /No more reverse-execution history\.[^]*Breakpoint 1, /, what);
      const d = dumps(out).map((m) => [...m]);
      assert.equal(d.length, 4, what);
      const [hit, stepped, back, again] = d;
      assert.equal(hit[0][1], `0x${entry.toString(16)}`, what);
      assert.match(out, new RegExp(`^\\$1 = 0x${entry.toString(16)}$`, "m"), `stvec: ${what}`);
      assert.notDeepEqual(stepped, hit, `two stepi moved: ${what}`);
      assert.deepEqual(back, hit, `two reverse-stepi restored pc and every register: ${what}`);
      assert.deepEqual(again, hit, `reverse-continue back at the hit, as it was: ${what}`);
      assert.match(out, /No more reverse-execution history\.[^]*exited normally/, what);
      assert.equal(vmOut.code, 0, what);
      assert.equal(vmOut.stdout, rec.stdout, `the command's recorded output: ${what}`);
      const m =
        /matched (\d+) checkpoints \((\d+) instructions, (\d+) block replies.*; (\d+) travels back/
          .exec(vmOut.stderr);
      assert.ok(m, what);
      assert.equal(Number(m[1]), Number(recorded[1]) + 1, `every checkpoint and the end: ${what}`);
      assert.equal(m[2], recorded[2], what);
      assert.ok(Number(m[4]) >= 3, what);
      const kept = /(\d+) snapshots kept \((\d+) thinned, ([\d.]+) MiB/.exec(vmOut.stderr);
      assert.ok(kept && Number(kept[2]) > 0 && Number(kept[3]) <= 16, what);
      const logged = parseLog(await Deno.readFile(log), log).entries.filter((e) => "blk" in e);
      assert.ok(logged.length > 0, "the recording has block replies");
      assert.ok(Number(m[3]) > logged.length, `block replies applied again after travels: ${what}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
