/**
 * Standard CPU benchmark (`deno task bench`, or `deno bench -A services/cpu/std_bench.ts`):
 * 7-Zip's `7zr b` (LZMA compress/decompress, single-threaded, fixed work) in the Linux guest,
 * under `./vmesh run` with the translator and with `--engine interp`, and under
 * `qemu-system-riscv64 -M virt` with the same firmware, kernel and initramfs, in the same
 * run. `7zr` is built from Debian's 7zip source (bench/sevenzip.ts) and reaches the guest
 * in an appended initramfs archive. Prints 7-Zip's compress/decompress KiB/s and MIPS
 * ratings for each machine and the vmesh/QEMU ratios (of medians, with VMESH_BENCH_7Z_RUNS
 * rounds, default 1, interleaved).
 *
 * The work is fixed by 7-Zip's `-mtic=N` (2^N "commands" per test instead of a time target),
 * and each vmesh engine is compared with QEMU doing the same work: VMESH_BENCH_7Z_TIC
 * (default 32) for the translator, VMESH_BENCH_7Z_TIC_INTERP (default 26: compression
 * then runs 7-Zip's minimum of one pass over its buffer) for the interpreter, ~15x slower.
 * (stress-ng was the first choice; `apt-get source stress-ng` answers 404 on the mirror here.)
 * VMESH_BENCH_SKIP_STD skips it all. Like cpu_bench.ts the runs happen once at module load;
 * nothing asserts on time.
 */

import {
  ensureGuestImages,
  type GuestImages,
  parseBatchOutput,
  runQemuBatch,
} from "../../guest/mod.ts";
import { batchCmdlineParam, vmeshRunArgs } from "../../guest/mod.ts";
import { spawnWithDeadline } from "../../guest/spawn_with_deadline.ts";
import { fileURLToPath } from "node:url";
import {
  ensureSevenZip,
  GUEST_7ZR,
  initramfsWith,
  parseSevenZipBench,
  type SevenZipResult,
} from "./bench/sevenzip.ts";

const VMESH = fileURLToPath(new URL("../../vmesh", import.meta.url));
const RUNS = Number(Deno.env.get("VMESH_BENCH_7Z_RUNS") ?? "1");
const TIC = Number(Deno.env.get("VMESH_BENCH_7Z_TIC") ?? "32");
const TIC_INTERP = Number(Deno.env.get("VMESH_BENCH_7Z_TIC_INTERP") ?? "26");
/** One guest run's limit; the interpreter is the slow one. */
const LIMIT_MS = 900_000;
/** 256 KiB dictionary: 6 MB of guest RAM, and the same choice on every machine. */
const command = (tic: number) => `${GUEST_7ZR} b 1 -mmt1 -md18 -mtic=${tic}`;

/** A machine measured: its label, vmesh engine (none: QEMU) and work size. */
interface Machine {
  label: string;
  engine?: string;
  tic: number;
}

const MACHINES: Machine[] = [
  { label: `qemu -mtic=${TIC}`, tic: TIC },
  { label: `vmesh run -mtic=${TIC}`, engine: "jit", tic: TIC },
  { label: `qemu -mtic=${TIC_INTERP}`, tic: TIC_INTERP },
  { label: `vmesh run --engine interp -mtic=${TIC_INTERP}`, engine: "interp", tic: TIC_INTERP },
];

function log(line: string): void {
  console.log(`std_bench: ${line}`);
}

function tail(text: string, n = 6): string {
  return text.replaceAll("\r", "").split("\n").filter((l) => l.trim()).slice(-n).join(" | ");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** One run of `7zr b`; returns its result and wall seconds, or throws with the output's tail. */
async function runOnce(
  m: Machine,
  images: GuestImages,
): Promise<{ r: SevenZipResult; wall: number }> {
  const t0 = performance.now();
  let text: string, output: string | null;
  if (!m.engine) {
    const q = await runQemuBatch(images, command(m.tic), {
      disk: false,
      net: false,
      timeoutMs: LIMIT_MS,
    });
    text = q.console;
    output = q.output;
  } else {
    const args = vmeshRunArgs(images, {
      engine: m.engine,
      timeoutS: LIMIT_MS / 1000 - 10,
      append: `quiet ${batchCmdlineParam(command(m.tic))}`,
    });
    const run = spawnWithDeadline(VMESH, args, LIMIT_MS);
    const [out, err] = await Promise.all([
      new Response(run.child.stdout).text(),
      new Response(run.child.stderr).text(),
      run.child.status,
    ]);
    run.clear();
    text = out + err;
    output = parseBatchOutput(out)?.output ?? null;
  }
  const wall = (performance.now() - t0) / 1000;
  const r = output === null ? null : parseSevenZipBench(output.replaceAll("\r", ""));
  if (!r) throw new Error(`no 7-Zip result after ${wall.toFixed(1)} s; output: ${tail(text)}`);
  return { r, wall };
}

async function measure(): Promise<void> {
  let images: GuestImages, binary: string, sourceVersion: string;
  try {
    images = await ensureGuestImages();
    ({ binary, sourceVersion } = await ensureSevenZip({ report: (l) => log(l) }));
  } catch (e) {
    log(`cannot prepare: ${(e as Error).message}`);
    return;
  }
  const withBench = { ...images, initramfs: await initramfsWith(images.initramfs, binary) };
  log(
    `7zip ${sourceVersion} (${binary}); guest command: ${
      command(TIC)
    } (interp: -mtic=${TIC_INTERP}); ${RUNS} round(s)`,
  );
  const results = new Map<string, SevenZipResult[]>();
  for (let i = 1; i <= RUNS; i++) {
    for (const m of MACHINES) {
      const label = m.label;
      try {
        const { r, wall } = await runOnce(m, withBench);
        results.set(label, [...(results.get(label) ?? []), r]);
        log(
          `${label} run ${i}: compress ${r.compressKiBs} KiB/s ${r.compressMips} MIPS, ` +
            `decompress ${r.decompressKiBs} KiB/s ${r.decompressMips} MIPS, ` +
            `total ${r.totalMips} MIPS; CPU freq test ${r.freqMHz.join(" ")} MHz; ${
              wall.toFixed(1)
            } s wall`,
        );
      } catch (e) {
        log(`${label} run ${i} failed: ${(e as Error).message}`);
      }
    }
  }
  log("---- summary (median of runs) ----");
  const med = (rs: SevenZipResult[], k: keyof SevenZipResult) =>
    median(rs.map((r) => r[k] as number));
  for (const m of MACHINES) {
    const label = m.label, rs = results.get(label);
    if (!rs) continue;
    const q = m.engine ? results.get(`qemu -mtic=${m.tic}`) : undefined;
    const keys = ["compressMips", "decompressMips", "totalMips"] as const;
    const ratios = q
      ? "; vmesh/qemu " + keys.map((k) => `${k} ${(med(rs, k) / med(q, k)).toFixed(3)}`).join(", ")
      : "";
    log(
      `7zr b ${label.padEnd(40)}: compress ${med(rs, "compressMips")} MIPS, decompress ${
        med(rs, "decompressMips")
      } MIPS, total ${med(rs, "totalMips")} MIPS (${rs.length} runs)${ratios}`,
    );
  }
}

if (Deno.env.get("VMESH_BENCH_SKIP_STD") === undefined) await measure();
