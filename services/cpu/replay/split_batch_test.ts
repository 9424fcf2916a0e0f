/**
 * What reverse execution rests on: a batch split into resumed runs (`hart.run(k, true)`, as the
 * GDB stub runs a replay) ends in the same state as the unsplit batch, interrupts included.
 * Runs real programs on instruction-count time with random splits and compares output, exit
 * code, instruction count and the hash of RAM and every record with an unsplit run.
 */
import assert from "node:assert/strict";
import { Machine } from "../machine/machine.ts";
import { StopReason } from "../engine.ts";
import { machineHash } from "./run_log.ts";
import { buildProgram } from "../../../tests/riscv/build.ts";
import { buildIsaProgram, ISA_PROGRAMS } from "../../../tests/riscv/programs.ts";
import { ensureGuestImages } from "../../../guest/mod.ts";

const RACE = new URL("./testdata/timer_race.c", import.meta.url).pathname;

/** A small deterministic generator (the test's splits are the same every run). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

async function run(elf: string, split: "none" | "resumed" | "fresh") {
  const out: number[] = [];
  const next = rng(12345);
  const m: Machine = new Machine({
    ramSize: 16 << 20,
    kernel: elf,
    engine: "interp",
    clock: "instructions",
    rtcEpochNs: 1_700_000_000_123_000_000,
    maxInstructions: 50_000_000,
    onConsoleOutput: (b) => out.push(...b),
    debug: split === "none" ? undefined : {
      runBatch(budget: number, id: number): Promise<StopReason> {
        const hart = m.harts[id] as unknown as {
          run(n: number, r?: boolean): StopReason;
          ran: number;
        };
        let used = 0;
        while (used < budget) {
          // Mostly short pieces (1..40 units), now and then a long one.
          const k = Math.min(budget - used, next() < 0.9 ? 1 + Math.floor(next() * 40) : 5000);
          const reason = hart.run(k, split === "resumed" && used > 0);
          used += hart.ran;
          if (reason !== StopReason.Budget) return Promise.resolve(reason);
        }
        return Promise.resolve(StopReason.Budget);
      },
    },
  });
  const code = await m.run();
  return { code, out: new TextDecoder().decode(new Uint8Array(out)), hash: machineHash(m) };
}

const programs = async () =>
  [
    ["timer_race", await buildProgram(RACE)],
    ...await Promise.all(
      ["interrupts", "sstc", "traps"].map(async (n) =>
        [n, await buildIsaProgram(ISA_PROGRAMS.find((p) => p.name === n)!)] as const
      ),
    ),
  ] as const;

Deno.test("a batch split into resumed runs ends as the unsplit batch does", async () => {
  let freshDiffers = 0;
  for (const [name, elf] of await programs()) {
    const whole = await run(elf, "none");
    const split = await run(elf, "resumed");
    assert.equal(split.out, whole.out, `${name}: console output`);
    assert.equal(split.code, whole.code, `${name}: exit code`);
    assert.equal(split.hash, whole.hash, `${name}: RAM, harts, devices, instructions`);
    // Without resume every piece checks interrupts and time afresh: the run may go elsewhere.
    const fresh = await run(elf, "fresh");
    if (fresh.hash !== whole.hash) freshDiffers++;
  }
  assert.ok(freshDiffers > 0, "splitting without resume changes some run (the test can fail)");
});

Deno.test("the Linux boot's first 12M instructions run unit by unit end as the batches do", async () => {
  // Traps after some instructions of an exec cost no budget unit in a batch: a run split
  // into single units must count them the same (gdb breakpoints on a replay run so).
  const images = await ensureGuestImages();
  const [kernel, bios, initrd] = await Promise.all(
    [images.kernel, images.firmware, images.initramfs].map((p) => Deno.readFile(p)),
  );
  const boot = async (split: boolean) => {
    const m: Machine = new Machine({
      ramSize: 256 << 20,
      kernel,
      bios,
      initrd,
      append: "console=ttyS0",
      engine: "interp",
      clock: "instructions",
      rtcEpochNs: 1_700_000_000_123_000_000,
      maxInstructions: 12_000_000,
      onConsoleOutput: () => {},
      debug: !split ? undefined : {
        runBatch(budget: number, id: number): Promise<StopReason> {
          const hart = m.harts[id] as unknown as {
            run(n: number, r?: boolean): StopReason;
            ran: number;
          };
          let used = 0;
          while (used < budget) {
            const reason = hart.run(1, used > 0);
            used += hart.ran;
            if (reason !== StopReason.Budget) return Promise.resolve(reason);
          }
          return Promise.resolve(StopReason.Budget);
        },
      },
    });
    await m.run();
    return machineHash(m);
  };
  assert.equal(await boot(true), await boot(false));
});
