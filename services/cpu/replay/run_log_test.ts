/**
 * A replay that goes another way says where and what: the timer race program recorded, then
 * replayed with another RTC epoch in the header (the program reads the RTC, so its loop runs
 * another number of times): the first checkpoint differs, and the message names the records
 * that differ, the RTC's among them; the unchanged log replays clean.
 */
import assert from "node:assert/strict";
import { Machine } from "../machine/machine.ts";
import { imagesDigest, RunRecorder, RunReplayer } from "./run_log.ts";
import { encodeLog, parseLog } from "./log_format.ts";
import { buildProgram } from "../../../tests/riscv/build.ts";

const RACE = new URL("./testdata/timer_race.c", import.meta.url).pathname;

async function runWith(elf: Uint8Array, journal: RunRecorder | RunReplayer, epoch: number) {
  const m = new Machine({
    ramSize: 16 << 20,
    kernel: elf,
    engine: "interp",
    clock: "instructions",
    journal,
    rtcEpochNs: epoch,
  });
  return await m.run();
}

Deno.test("a replay that diverges names the step and the records that differ", async () => {
  const elf = await Deno.readFile(await buildProgram(RACE));
  const dir = await Deno.makeTempDir({ prefix: "vmesh-runlog-" });
  try {
    const path = `${dir}/race.log`;
    const header = {
      vmesh: "run-log" as const,
      version: 1 as const,
      images: await imagesDigest([elf]),
      ramSize: 16 << 20,
      harts: 1,
      rtcEpochNs: 1_700_000_000_000_000_000,
      checkpointEvery: 50_000,
    };
    await runWith(elf, await RunRecorder.create(path, header), header.rtcEpochNs);
    const expected = { ...header, append: undefined };
    const clean = await RunReplayer.open(path, expected);
    await runWith(elf, clean, clean.header.rtcEpochNs);
    assert.equal(clean.divergence, undefined);
    assert.ok(clean.checkpoints >= 5);

    // Another epoch: 37 ms later, so the program's skew loop runs another number of times.
    const log = parseLog(await Deno.readFile(path), path);
    const epoch = { ...log.header, rtcEpochNs: header.rtcEpochNs + 37e6 };
    await Deno.writeFile(`${dir}/other.log`, encodeLog(epoch, log.entries));
    const other = await RunReplayer.open(`${dir}/other.log`, expected);
    await runWith(elf, other, other.header.rtcEpochNs);
    assert.match(other.divergence ?? "", /^diverged at step \d+: recorded [0-9a-f]{16}:\d+/);
    assert.match(other.divergence!, /differs in .*\brtc\b/, other.divergence);
    assert.match(other.divergence!, /differs in .*\bhart0\b/, other.divergence);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
