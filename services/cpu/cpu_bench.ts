/**
 * CPU benchmark (`deno task bench`): one compute-bound bare-metal program (bench/bench.c:
 * sorting, hashing, CRC, matrix multiply, branchy integer code) built with the Debian cross
 * toolchain, run under QEMU TCG (`-M virt`) and under vmesh in the same run. Prints the
 * instructions retired, guest and process time, MIPS for each and the vmesh/QEMU ratio.
 *
 * The runs happen once at module load, not inside Deno.bench: Deno always repeats a bench
 * function (warm-up plus measured runs), and a vmesh run takes seconds.
 */

import { fileURLToPath } from "node:url";
import { buildProgram } from "../../tests/riscv/build.ts";
import { runQemu, type RunResult, runVmesh } from "../../tests/riscv/run.ts";

/** CLINT mtime frequency of QEMU virt and vmesh (ticks per second). */
const TIMEBASE_HZ = 10_000_000;
/** Workload size; 50 rounds is about 185 million instructions. */
const ROUNDS = Number(Deno.env.get("VMESH_BENCH_ROUNDS") ?? "50");
const SOURCE = fileURLToPath(new URL("./bench/bench.c", import.meta.url));

/** What the guest program reported. */
interface GuestReport {
  checksum: string;
  instret: number;
  seconds: number;
}

/** One machine's measurement. */
interface Measurement {
  report: GuestReport;
  wallSeconds: number;
}

function log(line: string): void {
  console.log(`cpu_bench: ${line}`);
}

function parseReport(r: RunResult): GuestReport {
  const field = (name: string) => r.stdout.match(new RegExp(`^bench ${name} (\\S+)$`, "m"))?.[1];
  const checksum = field("checksum"), instret = field("instret"), ticks = field("mtime_ticks");
  if (r.code !== 0 || checksum === undefined || instret === undefined || ticks === undefined) {
    const tail = (s: string) => s.trim().split("\n").slice(-5).join(" | ");
    throw new Error(
      `exit ${r.code}${r.timedOut ? " (time limit)" : ""}; stdout: ${tail(r.stdout)}; stderr: ${
        tail(r.stderr)
      }`,
    );
  }
  return { checksum, instret: Number(instret), seconds: Number(ticks) / TIMEBASE_HZ };
}

function mips(instructions: number, seconds: number): string {
  return seconds > 0 ? (instructions / seconds / 1e6).toFixed(1) : "n/a";
}

async function measure(): Promise<void> {
  let elf: string;
  try {
    elf = await buildProgram(SOURCE, { flags: ["-DVMESH_VIRT", `-DROUNDS=${ROUNDS}`] });
  } catch (e) {
    log(`cannot build the workload: ${(e as Error).message}`);
    return;
  }
  log(`workload ${SOURCE} (ROUNDS=${ROUNDS}), ELF ${elf}`);

  // Exact instruction count: QEMU's minstret counts host ticks unless -icount is on.
  let exact: GuestReport | undefined;
  try {
    exact = parseReport(await runQemu(elf, "virt", 120_000, ["-icount", "shift=0"]));
    log(`instructions retired (QEMU -icount shift=0): ${exact.instret}`);
  } catch (e) {
    log(`QEMU -icount run failed: ${(e as Error).message}`);
  }

  let qemu: Measurement | undefined;
  try {
    const r = await runQemu(elf, "virt", 120_000);
    qemu = { report: parseReport(r), wallSeconds: r.wallMs / 1000 };
  } catch (e) {
    log(`QEMU run failed: ${(e as Error).message}`);
  }

  // Both engines in the same run: the translator (default) and the interpreter.
  const engines: Record<string, Measurement | undefined> = {};
  for (const engine of ["jit", "interp"]) {
    try {
      const r = await runVmesh(elf, 600_000, ["--engine", engine, "--timeout", "580"]);
      const m = { report: parseReport(r), wallSeconds: r.wallMs / 1000 };
      engines[engine] = m;
      log(
        `instructions retired (vmesh --engine ${engine} minstret): ${m.report.instret}` +
          (exact
            ? (m.report.instret === exact.instret ? " (equals QEMU's)" : " (DIFFERS from QEMU's)")
            : ""),
      );
    } catch (e) {
      log(`vmesh --engine ${engine} run failed: ${(e as Error).message}`);
    }
  }

  const instructions = engines.jit?.report.instret ?? engines.interp?.report.instret ??
    exact?.instret;
  if (instructions === undefined) return;
  const rows: [string, Measurement | undefined][] = [
    ["QEMU        ", qemu],
    ["vmesh jit   ", engines.jit],
    ["vmesh interp", engines.interp],
  ];
  for (const [name, m] of rows) {
    if (!m) continue;
    log(
      `${name}: guest time ${m.report.seconds.toFixed(3)} s -> ${
        mips(instructions, m.report.seconds)
      } MIPS; ` +
        `process wall ${m.wallSeconds.toFixed(3)} s -> ${
          mips(instructions, m.wallSeconds)
        } MIPS; ` +
        `checksum ${m.report.checksum}`,
    );
  }
  for (const [engine, vmesh] of Object.entries(engines)) {
    if (!qemu || !vmesh) continue;
    if (qemu.report.checksum !== vmesh.report.checksum) {
      log(`checksums DIFFER: vmesh --engine ${engine} computed a wrong result`);
    }
    const guestRatio = vmesh.report.seconds / qemu.report.seconds;
    const wallRatio = vmesh.wallSeconds / qemu.wallSeconds;
    log(
      `ratio vmesh --engine ${engine}/QEMU time: ${guestRatio.toFixed(1)}x (guest time), ` +
        `${wallRatio.toFixed(1)}x (process wall); ${
          (100 / guestRatio).toFixed(1)
        }% of QEMU TCG speed`,
    );
  }
}

if (Deno.env.get("VMESH_BENCH_SKIP_CPU") === undefined) await measure();
