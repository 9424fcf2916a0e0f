/**
 * Shared steps of the QEMU-compatibility tests: build a program under tests/riscv/compat (virt
 * flavour), run it on `qemu-system-riscv64 -M virt` (the oracle) and on vmesh's `virt` machine,
 * and compare the console output byte for byte.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildProgram, RISCV_TEST_DIR } from "./riscv/build.ts";
import { describe, runQemu, type RunResult } from "./riscv/run.ts";

/** QEMU flags that give `virt` a virtio-rng device on slot 0 with the modern transport. */
export const QEMU_RNG_SLOT0: readonly string[] = [
  "-global",
  "virtio-mmio.force-legacy=false",
  "-device",
  "virtio-rng-device,bus=virtio-mmio-bus.0",
];

/** QEMU flags for a virtio-rng device on slot 0 with QEMU's default legacy transport. */
export const QEMU_LEGACY_RNG_SLOT0: readonly string[] = [
  "-device",
  "virtio-rng-device,bus=virtio-mmio-bus.0",
];

/** QEMU flags for a virtio-net NIC on slot 0 with user networking (modern transport). */
export const QEMU_NET_SLOT0: readonly string[] = [
  "-global",
  "virtio-mmio.force-legacy=false",
  "-netdev",
  "user,id=n0",
  "-device",
  "virtio-net-device,netdev=n0,bus=virtio-mmio-bus.0,mac=52:54:00:12:34:56",
];

/** QEMU flags for a virtio-blk device on slot 0 over raw image `path` (modern transport). */
export function qemuBlkSlot0(path: string): string[] {
  return [
    "-global",
    "virtio-mmio.force-legacy=false",
    "-drive",
    `file=${path},if=none,format=raw,id=hd0`,
    "-device",
    "virtio-blk-device,drive=hd0,bus=virtio-mmio-bus.0",
  ];
}

const MACHINE_RUNNER = join(RISCV_TEST_DIR, "..", "qemu_compat_machine.ts");

/** Builds tests/riscv/compat/<name>.c for the virt board (UART console, SiFive finisher). */
export function buildCompatProgram(name: string): Promise<string> {
  return buildProgram(`compat/${name}.c`, { flags: ["-DVMESH_VIRT"] });
}

/**
 * Runs `elf` on vmesh's virt machine with virtio-rng devices on `rngSlots` and virtio-blk
 * devices on raw images (`disks`: slot -> image path).
 */
export async function runVmeshVirt(
  elf: string,
  rngSlots: number[] = [],
  disks: Record<number, string> = {},
  legacy = false,
  netSlots: number[] = [],
): Promise<RunResult> {
  const start = performance.now();
  const args = ["run", "-A", "--quiet", MACHINE_RUNNER, "--timeout", "100"];
  if (legacy) args.push("--legacy");
  for (const s of netSlots) args.push("--net", String(s));
  for (const s of rngSlots) args.push("--rng", String(s));
  for (const [slot, path] of Object.entries(disks)) args.push("--blk", `${slot}=${path}`);
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...args, elf],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
    timedOut: out.code === 124,
    wallMs: performance.now() - start,
  };
}

/** First differing line of two outputs, for the assertion message. */
export function firstDifference(want: string, got: string): string {
  const a = want.split("\n"), b = got.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) {
      return `first difference at line ${i + 1}:\n  qemu:  ${a[i] ?? "<end>"}\n  vmesh: ${
        b[i] ?? "<end>"
      }`;
    }
  }
  return "outputs equal";
}

/**
 * The differential check: the program passes under QEMU with at least `minLines` lines of
 * output, and vmesh prints exactly the same and exits 0.
 */
export async function assertSameAsQemu(opts: {
  name: string;
  qemuArgs?: readonly string[];
  rngSlots?: number[];
  disks?: Record<number, string>;
  /** vmesh's virtio slots use the legacy (Version 1) transport. */
  legacy?: boolean;
  /** Slots with a virtio-net device on a switch with a 10.0.2.2 gateway. */
  netSlots?: number[];
  minLines: number;
}): Promise<string> {
  const elf = await buildCompatProgram(opts.name);
  const oracle = await runQemu(elf, "virt", 60_000, [...(opts.qemuArgs ?? [])]);
  const qemuWhat = describe(`qemu ${opts.name}`, oracle);
  assert.equal(oracle.timedOut, false, qemuWhat);
  assert.equal(oracle.code, 0, qemuWhat);
  assert.ok(oracle.stdout.endsWith("PASS\n"), qemuWhat);
  assert.ok(oracle.stdout.split("\n").length > opts.minLines, qemuWhat);

  const r = await runVmeshVirt(elf, opts.rngSlots, opts.disks, opts.legacy, opts.netSlots);
  const what = describe(`vmesh ${opts.name}`, r);
  assert.ok(r.stdout === oracle.stdout, `${firstDifference(oracle.stdout, r.stdout)}\n${what}`);
  assert.equal(r.code, 0, what);
  return oracle.stdout;
}
