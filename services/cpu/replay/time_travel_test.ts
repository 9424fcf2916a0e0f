/**
 * Reverse execution's snapshots stay under their memory cap: the race program replayed with
 * a snapshot every 2000 instructions and a 64 KiB cap keeps few snapshots, spaced wider the
 * older they are (the first kept), and the replay still matches every checkpoint.
 */
import assert from "node:assert/strict";
import { Machine } from "../machine/machine.ts";
import { imagesDigest, RunRecorder, RunReplayer } from "./run_log.ts";
import { TimeTravel } from "./time_travel.ts";
import { type DebugHart, GdbStub } from "../gdb/mod.ts";
import { buildProgram } from "../../../tests/riscv/build.ts";

const RACE = new URL("./testdata/timer_race.c", import.meta.url).pathname;

Deno.test("snapshots are thinned to stay under --snapshot-memory, older ones first", async () => {
  const elf = await Deno.readFile(await buildProgram(RACE));
  const dir = await Deno.makeTempDir({ prefix: "vmesh-tt-" });
  try {
    const path = `${dir}/race.log`;
    const header = {
      vmesh: "run-log" as const,
      version: 2 as const,
      images: await imagesDigest([elf]),
      ramSize: 16 << 20,
      harts: 1,
      rtcEpochNs: 1_700_000_000_000_000_000,
      checkpointEvery: 50_000,
    };
    const machine = (journal: RunRecorder | TimeTravel, stub?: () => GdbStub) =>
      new Machine({
        ramSize: 16 << 20,
        kernel: elf,
        engine: "interp",
        clock: "instructions",
        journal,
        rtcEpochNs: header.rtcEpochNs,
        debug: stub ? { runBatch: (n, h) => stub().runBatch(n, h) } : undefined,
      });
    await machine(await RunRecorder.create(path, header)).run();

    const cap = 64 << 10;
    const replayer = await RunReplayer.open(path, { ...header, append: undefined });
    const tt = new TimeTravel(replayer, {
      harts: 1,
      ramSize: 16 << 20,
      snapshotEvery: 2000,
      snapshotMemory: cap,
    });
    const ref: { stub?: GdbStub } = {};
    const m = machine(tt, () => ref.stub!);
    ref.stub = new GdbStub({
      harts: m.harts as unknown as DebugHart[],
      mem: m.mem,
      kill: () => m.stop(0),
    }, { reverse: tt });
    await m.run();
    assert.equal(replayer.divergence, undefined);
    assert.ok(replayer.checkpoints >= 5, `${replayer.checkpoints} checkpoints`);
    const taken = tt.snapshots.length + tt.thinned;
    assert.ok(tt.thinned > taken / 2, `${tt.thinned} of ${taken} thinned`);
    assert.ok(tt.heldBytes <= cap, `${tt.heldBytes} bytes held`);
    assert.equal(
      tt.heldBytes,
      tt.snapshotBytes() - 4096,
      "the count matches the pages (zero page aside)",
    );
    const g = tt.snapshots.map((s) => s.g);
    assert.equal(g[0], 0, "the start of the recording is kept");
    const gaps = g.slice(1).map((x, i) => x - g[i]);
    assert.ok(tt.snapshots.length >= 4, `${tt.snapshots.length} kept`);
    assert.ok(
      gaps.every((x, i) => i === 0 || x <= gaps[i - 1]) && gaps[0] > 4 * gaps.at(-1)!,
      `older snapshots are further apart: ${gaps}`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
