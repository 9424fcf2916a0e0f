/**
 * A data race found with record, replay and reverse execution, using the real client: a
 * bare-metal program whose timer handler races with a loop (services/cpu/replay/testdata/
 * timer_race.c) is recorded until a run fails (the loop's phase comes from the RTC, so runs
 * differ); the failing recording is replayed under Debian's gdb-multiarch, which breaks at the
 * failure, goes back with reverse-continue to the timer interrupt that landed inside `bump`
 * between its load and its store, steps and reverse-steps there (pc and registers come back),
 * and runs forward again to the same failure; the replay still matches every checkpoint.
 */
import assert from "node:assert/strict";
import { buildProgram } from "./riscv/build.ts";
import { VMESH_CLI } from "./riscv/run.ts";
import { skippableName } from "../cli/test_summary.ts";
import { parseElf } from "../services/cpu/machine/elf.ts";
import { GDB, gdbBatch, gdbInstalled, startVmesh } from "./gdb_session.ts";
import { ensureGuestImages, vmeshRunArgs } from "../guest/mod.ts";

const SOURCE = new URL("../services/cpu/replay/testdata/timer_race.c", import.meta.url).pathname;
const noGdb = gdbInstalled ? undefined : `${GDB} not installed (apt-get install gdb-multiarch)`;

/** `vmesh run -m 16M --record LOG ELF` (checkpoints every 100k instructions). */
async function record(elf: string, log: string, extra: string[] = []) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      VMESH_CLI,
      "run",
      "-m",
      "16M",
      "--checkpoint-every",
      "100000",
      "--record",
      log,
      ...extra,
      elf,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** The registers `info registers pc ...` printed, one map per command, in order. */
function registerDumps(out: string): Map<string, string>[] {
  const dumps: Map<string, string>[] = [];
  let cur: Map<string, string> | undefined;
  for (const line of out.split("\n")) {
    const m = /^(pc|ra|sp|a[0-7]|t0)\s+(0x[0-9a-f]+)/.exec(line);
    if (!m) continue;
    if (m[1] === "pc") dumps.push(cur = new Map());
    cur?.set(m[1], m[2]);
  }
  return dumps;
}

Deno.test({
  name: skippableName(
    "reverse execution: a timer/loop data race recorded until it fails, then found with gdb",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const elf = await buildProgram(SOURCE, { flags: ["-g"] });
    const symbols = parseElf(await Deno.readFile(elf)).symbols;
    const [add, store] = [symbols.get("bump_add")!, symbols.get("bump_store")!];
    const dir = await Deno.makeTempDir({ prefix: "vmesh-race-" });
    try {
      // Record until a run loses the race (each run has its own RTC time, hence phase).
      const log = `${dir}/race.log`;
      let failed: Awaited<ReturnType<typeof record>> | undefined;
      const outcomes: number[] = [];
      for (let i = 0; i < 12 && !failed; i++) {
        const r = await record(elf, log);
        outcomes.push(r.code);
        if (r.code === 1) failed = r;
        else assert.equal(r.code, 0, r.stderr);
        await new Promise((res) => setTimeout(res, 7 + i * 3));
      }
      assert.ok(failed, `no recording failed in 12 runs (exit codes ${outcomes})`);
      const lost = /race lost: hits (\d+), want (\d+)/.exec(failed.stdout);
      assert.ok(lost, failed.stdout);
      const checkpoints = Number(/(\d+) checkpoints/.exec(failed.stderr)![1]);

      const vm = await startVmesh(elf, [
        "-S",
        "-m",
        "16M",
        "--replay",
        log,
        "--snapshot-every",
        "50000",
      ]);
      const out = await gdbBatch(elf, vm.port, [
        "break race_lost",
        "continue",
        "print hits",
        // Back to the last timer interrupt that hit bump between its load and its store.
        `break timer_seen if epc == ${add} || epc == ${store}`,
        "reverse-continue",
        "info symbol epc",
        "print ticks",
        "info registers pc ra sp a4 a5",
        "stepi",
        "info registers pc ra sp a4 a5",
        "reverse-stepi",
        "info registers pc ra sp a4 a5",
        "delete",
        // Forward again from here: the same failure, the same count.
        "break race_lost",
        "continue",
        "print hits",
        "delete",
        // With no breakpoint, back to the start of the recording.
        "reverse-continue",
        "info registers pc",
        "continue", // stops at the top of the recording's last batch: the end of its history
        "continue",
      ]);
      const vmOut = await vm.done;
      const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
      assert.match(out, /Breakpoint 1, race_lost \(got=\d+, want=[^)]*\d+\)/, what);
      const hits = [...out.matchAll(/^\$\d+ = (\d+)$/gm)].map((m) => m[1]);
      assert.equal(hits[0], lost[1], `hits at the failure as recorded: ${what}`);
      assert.match(out, /Breakpoint 2, timer_seen \(epc=(epc@entry=)?\d+\)/, what);
      // The interrupt found bump after its load (before the add or the store): the loop's
      // store will undo the handler's 1000.
      assert.match(out, /^bump_(add|store) in section \.text$/m, what);
      const regs = registerDumps(out).filter((d) => d.size === 5);
      assert.equal(regs.length, 3, what);
      const [before, stepped, back] = regs;
      assert.notEqual(stepped.get("pc"), before.get("pc"), `stepi moved: ${what}`);
      assert.deepEqual([...back], [...before], `reverse-stepi restored pc and registers: ${what}`);
      assert.match(out, /Breakpoint \d+, race_lost/, what);
      const after = out.split("Breakpoint 3, race_lost")[1] ?? "";
      assert.match(after, new RegExp(`^\\$\\d+ = ${lost[1]}$`, "m"), `same failure: ${what}`);
      assert.match(out, /No more reverse-execution history\./, what);
      assert.match(out, /^pc\s+0x1000\s/m, `back at the reset vector: ${what}`);
      assert.match(out, /exited with code 01\]/, what);
      assert.equal(vmOut.code, 1, what);
      // Every checkpoint and the end state matched, travels back and forth notwithstanding.
      const m = /matched (\d+) checkpoints .*, (\d+) travels back, (\d+) snapshots/.exec(
        vmOut.stderr,
      );
      assert.ok(m, what);
      assert.equal(Number(m[1]), checkpoints + 1, what);
      assert.ok(Number(m[2]) >= 3 && Number(m[3]) >= 5, what);
      // The console shows the run once, though parts of it ran several times.
      assert.equal(vmOut.stdout, failed.stdout, what);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skippableName(
    "reverse execution with two harts: reverse-stepi of the selected thread",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const elf = await buildProgram(SOURCE, { flags: ["-g"] });
    const secondary = parseElf(await Deno.readFile(elf)).symbols.get("rt_secondary")!;
    const dir = await Deno.makeTempDir({ prefix: "vmesh-race-smp-" });
    try {
      const log = `${dir}/smp.log`;
      const r = await record(elf, log, ["--smp", "2"]);
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
      const vm = await startVmesh(elf, ["-S", "-m", "16M", "--smp", "2", "--replay", log]);
      const out = await gdbBatch(elf, vm.port, [
        "break timer_seen", // the first timer interrupt: hart 1 is in its wfi loop by then
        "continue",
        "delete",
        "thread 2",
        "info registers pc",
        "reverse-stepi",
        "info registers pc",
        "kill",
      ]);
      const vmOut = await vm.done;
      const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
      const pcs = [...out.matchAll(/^pc\s+(0x[0-9a-f]+)/gm)].map((m) => Number(m[1]));
      assert.equal(pcs.length, 2, what);
      // Hart 1 sits in rt_secondary's wfi loop; one unit back is the instruction before it.
      assert.ok(pcs[0] > secondary && pcs[0] <= secondary + 8, what);
      assert.ok(pcs[1] >= secondary && pcs[1] < pcs[0], `hart 1 went back: ${what}`);
      assert.match(out, /\* 2\s+Thread 2 \(hart 1\)|Switching to thread 2/, what);
      assert.match(
        vmOut.stderr,
        /matched \d+ checkpoints .*stopped before the recording's end/,
        what,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skippableName(
    "reverse execution on the Linux kernel: break, step, reverse-stepi and reverse-continue",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const images = await ensureGuestImages();
    const dir = await Deno.makeTempDir({ prefix: "vmesh-linux-rr-" });
    try {
      // The first 20M instructions of a boot: OpenSBI, the kernel's entry and early setup.
      const log = `${dir}/boot.log`;
      const run = (extra: string[]) => vmeshRunArgs(images, { extra }).slice(1, -1);
      const rec = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--quiet",
          VMESH_CLI,
          ...vmeshRunArgs(images, {
            extra: [
              "--max-instructions",
              "20000000",
              "--checkpoint-every",
              "2000000",
              "--record",
              log,
            ],
          }),
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      const recErr = new TextDecoder().decode(rec.stderr);
      assert.equal(rec.code, 124, recErr);
      const checkpoints = Number(/(\d+) checkpoints/.exec(recErr)![1]);
      const vm = await startVmesh(images.kernel, ["-S", ...run(["--replay", log])]);
      const regs = "info registers pc ra sp a0 a1 t0";
      const out = await gdbBatch(null, vm.port, [
        "break *0x80200000", // the kernel's entry (_start), from OpenSBI
        "continue",
        regs,
        "break *0x80200040",
        "continue",
        regs,
        "stepi",
        "stepi",
        regs,
        "reverse-stepi",
        regs,
        "reverse-stepi",
        regs,
        "reverse-continue",
        regs,
        "delete",
        "continue", // to the top of the recording's last batch: the end of its history
        "continue",
      ]);
      const vmOut = await vm.done;
      const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
      const d = registerDumps(out).map((m) => [...m]);
      assert.equal(d.length, 6, what);
      const [entry, at40, stepped, back1, back2, again] = d;
      assert.equal(entry[0][1], "0x80200000", what);
      assert.equal(at40[0][1], "0x80200040", what);
      assert.notDeepEqual(stepped, at40, what);
      assert.notDeepEqual(back1, stepped, `one reverse-stepi moved back: ${what}`);
      assert.notDeepEqual(back1, at40, what);
      assert.deepEqual(back2, at40, `two reverse-stepi undo two stepi: ${what}`);
      assert.match(
        out,
        /Breakpoint 1, 0x0000000080200000 in \?\? \(\)[^]*Breakpoint 1, 0x0+80200000/,
        what,
      );
      assert.deepEqual(again, entry, `reverse-continue back at the entry, as it was: ${what}`);
      // To the recording's end (its instruction limit): every checkpoint and the end state.
      assert.match(out, /No more reverse-execution history\.[^]*exited with code 0174\]/, what);
      const m = /matched (\d+) checkpoints/.exec(vmOut.stderr);
      assert.ok(m, what);
      assert.equal(Number(m[1]), checkpoints + 1, what);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: skippableName(
    "reverse execution: reverse-continue stops at the last write a watchpoint watches",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const elf = await buildProgram(SOURCE, { flags: ["-g"] });
    const dir = await Deno.makeTempDir({ prefix: "vmesh-race-watch-" });
    try {
      const log = `${dir}/race.log`;
      const r = await record(elf, log);
      assert.ok(r.code === 0 || r.code === 1, r.stderr);
      const vm = await startVmesh(elf, ["-S", "-m", "16M", "--replay", log]);
      const out = await gdbBatch(elf, vm.port, [
        "break timer_seen",
        "continue",
        "continue", // the second timer interrupt: the first one's handler counted a tick
        "delete",
        "print ticks",
        "watch ticks",
        "reverse-continue", // back to just before the first handler's store to ticks
        "print ticks",
        "info symbol $pc",
        "stepi", // the store
        "print ticks",
        "kill",
      ]);
      const vmOut = await vm.done;
      const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
      const values = [...out.matchAll(/^\$\d+ = (\d+)$/gm)].map((m) => m[1]);
      assert.deepEqual(values, ["1", "0", "1"], what);
      assert.match(out, /Hardware watchpoint 2: ticks/, what);
      assert.match(out, /^on_timer( \+ \d+)? in section \.text$/m, what);
      assert.match(
        vmOut.stderr,
        /matched \d+ checkpoints .*stopped before the recording's end/,
        what,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
