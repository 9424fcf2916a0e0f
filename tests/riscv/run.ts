/**
 * Runs a bare-metal ELF under the two machines the tests compare: QEMU's `spike` board
 * (the oracle; HTIF via the ELF's tohost/fromhost symbols) and vmesh (`./vmesh run`).
 */

import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { spawnWithDeadline } from "../../guest/spawn_with_deadline.ts";
import { RISCV_TEST_DIR } from "./build.ts";

/** The QEMU binary used as the oracle. */
export const QEMU = "qemu-system-riscv64";

/**
 * The oracle's CPU: QEMU 7.2's default rv64 also implements H, the bit-manipulation and some
 * Sv* extensions; vmesh is RV64GC (+ Sstc), so those are switched off for a like-for-like
 * comparison (otherwise e.g. `andn` decodes on QEMU but is illegal on vmesh).
 */
export const QEMU_CPU =
  "rv64,h=false,zba=false,zbb=false,zbc=false,zbs=false,svinval=false,svnapot=false,svpbmt=false";

const REPO_ROOT = resolve(RISCV_TEST_DIR, "..", "..");
/** vmesh's CLI entry and the `run` subcommand module that must exist. */
export const VMESH_CLI: string = join(REPO_ROOT, "cli", "main.ts");
const VMESH_RUN = join(REPO_ROOT, "cli", "run.ts");

/** How a program run ended. */
export interface RunResult {
  /** Process exit code (the program's HTIF exit code on a clean exit). */
  code: number;
  /** Console output (HTIF device 1). */
  stdout: string;
  /** Diagnostics of the emulator itself. */
  stderr: string;
  /** True when the run was killed for exceeding its time limit. */
  timedOut: boolean;
  /** Wall time of the whole process in milliseconds. */
  wallMs: number;
}

/** Runs a command with stdin closed, killing it after `timeoutMs`. */
async function runProcess(cmd: string, args: string[], timeoutMs: number): Promise<RunResult> {
  const start = performance.now();
  const run = spawnWithDeadline(cmd, args, timeoutMs);
  try {
    const out = await run.child.output();
    const wallMs = performance.now() - start;
    return {
      code: out.code,
      stdout: new TextDecoder().decode(out.stdout),
      stderr: new TextDecoder().decode(out.stderr),
      timedOut: run.timedOut,
      wallMs,
    };
  } finally {
    run.clear();
  }
}

/**
 * Runs `elf` on `qemu-system-riscv64 -M <board> -bios none` (exit code = the program's
 * HTIF or finisher code, & 255). `extraArgs` go before the kernel (e.g. `-icount`).
 */
export function runQemu(
  elf: string,
  board: "spike" | "virt" = "spike",
  timeoutMs = 60_000,
  extraArgs: string[] = [],
): Promise<RunResult> {
  return runProcess(QEMU, [
    ...extraArgs,
    "-M",
    board,
    "-cpu",
    QEMU_CPU,
    "-bios",
    "none",
    "-kernel",
    elf,
    "-nographic",
    "-monitor",
    "none",
  ], timeoutMs);
}

/** True when vmesh's `run` command exists in this tree. */
export function vmeshRunAvailable(): boolean {
  return existsSync(VMESH_RUN);
}

/**
 * Runs `elf` under `./vmesh run` (the CLI entry run directly by this Deno).
 * Throws with a clear message when the `run` command does not exist yet.
 */
export function runVmesh(
  elf: string,
  timeoutMs = 120_000,
  extraArgs: string[] = [],
): Promise<RunResult> {
  if (!vmeshRunAvailable()) {
    throw new Error(`vmesh cannot run programs yet: ${VMESH_RUN} does not exist`);
  }
  return runProcess(
    Deno.execPath(),
    ["run", "-A", "--quiet", VMESH_CLI, "run", ...extraArgs, elf],
    timeoutMs,
  );
}

/** One line describing a run, for assertion messages. */
export function describe(name: string, r: RunResult): string {
  const tail = (s: string) => s.length > 2000 ? "…" + s.slice(-2000) : s;
  return `${name}: exit ${r.code}${r.timedOut ? " (killed: time limit)" : ""}\n` +
    `--- stdout ---\n${tail(r.stdout)}\n--- stderr ---\n${tail(r.stderr)}`;
}
