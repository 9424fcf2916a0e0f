/**
 * Linux benchmark (`deno task bench`, or `deno bench -A cli/boot_bench.ts`): the cached guest
 * images (OpenSBI fw_jump.bin, Linux 6.1, busybox initramfs, 64 MiB data.ext4) under vmesh and
 * under `qemu-system-riscv64 -M virt` in the same run:
 *
 * 1. boot to the shell prompt: `./vmesh boot` as a user runs it (bus, console, disk and CPU
 *    services as processes), `./vmesh run` (the machine in one process, no bus), each with the
 *    translator (default) and with `--engine interp`, and QEMU with
 *    the same firmware, kernel, initramfs and disk; times from spawn to the guest /init's ready
 *    line and to the prompt, median and min of VMESH_BENCH_BOOT_RUNS (default 3) runs each;
 * 2. sequential read of the virtio disk in the guest (`dd if=/dev/vda bs=1M count=64`, page
 *    cache dropped before each of VMESH_BENCH_DD_RUNS reads, default 3): vmesh's virtio-blk
 *    goes over NATS to the disk service (copy-on-write overlay), QEMU's reads the same image
 *    with snapshot=on; MiB/s from busybox dd's own byte count and seconds.
 *
 * With VMESH_BENCH_OTEL=1 it also boots `./vmesh boot` and runs the dd reads with and without
 * OpenTelemetry export (OTEL_DENO=true to tests/otlp_receiver.ts), to show what export costs.
 * VMESH_BENCH_SKIP_BOOT skips it all. Like cpu_bench.ts, the runs happen once at module load (Deno.bench repeats its
 * functions); nothing here asserts on time. A failing measurement prints why and the rest go on.
 */

import { fileURLToPath } from "node:url";
import {
  ensureGuestImages,
  GUEST_PROMPT,
  GUEST_READY_MARKER,
  type GuestImages,
  qemuArgs,
  runQemuBatch,
  vmeshRunArgs,
} from "../guest/mod.ts";
import { type MarkerRun, timeMarkers } from "./marker_timer.ts";

const VMESH = fileURLToPath(new URL("../vmesh", import.meta.url));
const QEMU = "qemu-system-riscv64";
const BOOT_RUNS = Number(Deno.env.get("VMESH_BENCH_BOOT_RUNS") ?? "3");
const DD_RUNS = Number(Deno.env.get("VMESH_BENCH_DD_RUNS") ?? "3");
/** Time limit of one boot; generous for a loaded 2-core machine. */
const BOOT_LIMIT_MS = 300_000;
/** Time limit of the dd batch run (64 MiB x DD_RUNS over the bus). */
const DD_LIMIT_MS = 900_000;

function log(line: string): void {
  console.log(`boot_bench: ${line}`);
}

/** Boot times of one machine, in milliseconds. */
interface BootTimes {
  ready: number[];
  prompt: number[];
  /** dd MiB/s (OpenTelemetry comparison only). */
  dd?: number[];
}

/** Read rates of one machine, in MiB/s. */
type DdRates = number[];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const sec = (ms: number) => (ms / 1000).toFixed(2);

function tail(text: string, n = 6): string {
  return text.replaceAll("\r", "").split("\n").filter((l) => l.trim()).slice(-n).join(" | ");
}

/** One boot to the prompt; throws with the reason if the prompt never came. */
async function bootOnce(cmd: string, args: string[], env?: Record<string, string>) {
  const r: MarkerRun = await timeMarkers(cmd, args, {
    markers: [GUEST_READY_MARKER, GUEST_PROMPT],
    timeoutMs: BOOT_LIMIT_MS,
    env,
  });
  const ready = r.at[GUEST_READY_MARKER], prompt = r.at[GUEST_PROMPT];
  if (ready === undefined || prompt === undefined) {
    throw new Error(
      `no prompt${r.timedOut ? ` within ${BOOT_LIMIT_MS / 1000} s` : ""} (exit ${r.code}); ` +
        `last output: ${tail(r.output)}`,
    );
  }
  return { ready, prompt };
}

/** `./vmesh boot` as a user runs it, interactive (the prompt appears on its stdout). */
const VMESH_BOOT_ARGS = ["boot", "--timeout", String(BOOT_LIMIT_MS / 1000)];

/** The machines whose boot is timed, by label. */
function bootCommands(images: GuestImages): [string, string, string[]][] {
  const run = (engine: string) => vmeshRunArgs(images, { engine, timeoutS: BOOT_LIMIT_MS / 1000 });
  return [
    ["vmesh boot", VMESH, VMESH_BOOT_ARGS],
    ["vmesh boot --engine interp", VMESH, [...VMESH_BOOT_ARGS, "--engine", "interp"]],
    ["vmesh run", VMESH, run("jit")],
    ["vmesh run --engine interp", VMESH, run("interp")],
    // The interpreter warm-up (hart/warmup_program.ts) stays only while it pays: this shows it.
    ["vmesh run, no warm-up", "env", ["VMESH_NO_WARMUP=1", VMESH, ...run("jit")]],
    // Same devices as `./vmesh boot` without --nic: the data disk, no network.
    ["qemu", QEMU, qemuArgs(images, { net: false })],
  ];
}

/** Runs every machine's boot BOOT_RUNS times, interleaved so load changes hit all alike. */
async function measureBoots(images: GuestImages): Promise<Map<string, BootTimes>> {
  const out = new Map<string, BootTimes>();
  const machines = bootCommands(images);
  for (let i = 1; i <= BOOT_RUNS; i++) {
    for (const [label, cmd, args] of machines) {
      try {
        const t = await bootOnce(cmd, args);
        const times = out.get(label) ?? { ready: [], prompt: [] };
        times.ready.push(t.ready);
        times.prompt.push(t.prompt);
        out.set(label, times);
        log(`${label} run ${i}: init ready ${sec(t.ready)} s, prompt ${sec(t.prompt)} s`);
      } catch (e) {
        log(`${label} run ${i} failed: ${(e as Error).message}`);
      }
    }
  }
  return out;
}

/** The guest command: disk size, then DD_RUNS cold sequential reads of the whole disk. */
const DD_COMMAND = "echo vda_sectors=$(cat /sys/block/vda/size); for i in " +
  Array.from({ length: DD_RUNS }, (_, i) => i + 1).join(" ") +
  "; do echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=1M count=64; done";

/** MiB/s of each busybox dd report ("N bytes (..) copied, S seconds, ..") in `text`. */
export function parseDdRates(text: string): DdRates {
  const rates: DdRates = [];
  for (const m of text.matchAll(/(\d+) bytes \([^)]*\) copied, ([\d.]+) seconds/g)) {
    const bytes = Number(m[1]), seconds = Number(m[2]);
    if (bytes > 0 && seconds > 0) rates.push(bytes / 1048576 / seconds);
  }
  return rates;
}

function checkDd(label: string, output: string): DdRates {
  const sectors = output.match(/vda_sectors=(\d+)/)?.[1];
  if (sectors) log(`${label}: /dev/vda is ${Number(sectors) * 512 / 1048576} MiB`);
  const rates = parseDdRates(output);
  if (rates.length === 0) throw new Error(`no dd report; output: ${tail(output)}`);
  log(`${label}: dd MiB/s ${rates.map((r) => r.toFixed(1)).join(", ")}`);
  return rates;
}

/** The dd command under `./vmesh boot` (disk over the bus, copy-on-write overlay). */
async function vmeshDd(label: string, env?: Record<string, string>): Promise<DdRates> {
  const r = await timeMarkers(
    VMESH,
    ["boot", "--timeout", String(DD_LIMIT_MS / 1000 - 20), "--", DD_COMMAND],
    { markers: [], timeoutMs: DD_LIMIT_MS, waitForExit: true, env },
  );
  return checkDd(label, r.stdout + (r.code === 0 ? "" : r.output));
}

async function measureDd(images: GuestImages): Promise<Map<string, DdRates>> {
  const out = new Map<string, DdRates>();
  try {
    out.set("vmesh boot", await vmeshDd("vmesh boot"));
  } catch (e) {
    log(`vmesh boot dd failed: ${(e as Error).message}`);
  }
  try {
    const r = await runQemuBatch(images, DD_COMMAND, { net: false, timeoutMs: 120_000 });
    out.set("qemu", checkDd("qemu", r.output ?? r.console));
  } catch (e) {
    log(`qemu dd failed: ${(e as Error).message}`);
  }
  return out;
}

/** Boots `./vmesh boot` BOOT_RUNS times without and with OTLP export, alternating. */
async function measureOtel(): Promise<Map<string, BootTimes>> {
  const out = new Map<string, BootTimes>();
  let rx;
  try {
    const { startOtlpReceiver } = await import("../tests/otlp_receiver.ts");
    rx = startOtlpReceiver();
  } catch (e) {
    log(`no OTLP receiver: ${(e as Error).message}`);
    return out;
  }
  try {
    const variants: [string, Record<string, string>][] = [
      ["no export", { OTEL_DENO: "false" }],
      ["otel export", { OTEL_DENO: "true", OTEL_EXPORTER_OTLP_ENDPOINT: rx.endpoint }],
    ];
    for (let i = 1; i <= BOOT_RUNS; i++) {
      for (const [label, env] of variants) {
        try {
          const t = await bootOnce(VMESH, VMESH_BOOT_ARGS, env);
          const times = out.get(label) ?? { ready: [], prompt: [] };
          times.ready.push(t.ready);
          times.prompt.push(t.prompt);
          out.set(label, times);
          log(`vmesh boot, ${label}, run ${i}: prompt ${sec(t.prompt)} s`);
        } catch (e) {
          log(`vmesh boot, ${label}, run ${i} failed: ${(e as Error).message}`);
        }
      }
    }
    for (const [label, env] of variants) {
      try {
        const rates = await vmeshDd(`vmesh boot dd, ${label}`, env);
        const times = out.get(label) ?? { ready: [], prompt: [] };
        times.dd = rates;
        out.set(label, times);
      } catch (e) {
        log(`vmesh boot dd, ${label}, failed: ${(e as Error).message}`);
      }
    }
    log(`OTLP receiver got ${rx.spans.length} spans (${rx.problems.length} unreadable exports)`);
  } finally {
    await rx.close();
  }
  return out;
}

function summary(
  boots: Map<string, BootTimes>,
  dd: Map<string, DdRates>,
  otel: Map<string, BootTimes>,
): void {
  const q = boots.get("qemu");
  const ratio = (a: number, b: number | undefined) => b ? `${(a / b).toFixed(1)}x` : "n/a";
  log("---- summary ----");
  for (const [label, t] of boots) {
    const med = median(t.prompt), min = Math.min(...t.prompt);
    log(
      `boot-to-prompt ${label.padEnd(26)}: median ${sec(med)} s, min ${sec(min)} s ` +
        `(init ready: median ${sec(median(t.ready))} s; ${t.prompt.length} runs)` +
        (q && label !== "qemu" ? `; vmesh/qemu ${ratio(med, median(q.prompt))} (median)` : ""),
    );
  }
  const vd = dd.get("vmesh boot"), qd = dd.get("qemu");
  if (vd || qd) {
    const fmt = (r: DdRates | undefined) => r ? `${median(r).toFixed(1)} MiB/s` : "n/a";
    log(
      `dd 64 MiB from /dev/vda (median of ${DD_RUNS}): vmesh ${fmt(vd)}, qemu ${fmt(qd)}` +
        (vd && qd ? `, vmesh/qemu ${(median(vd) / median(qd)).toFixed(3)}` : ""),
    );
  }
  const off = otel.get("no export"), on = otel.get("otel export");
  if (off && on) {
    log(
      `vmesh boot with OTLP export: median ${sec(median(on.prompt))} s vs ` +
        `${sec(median(off.prompt))} s without (${
          (median(on.prompt) / median(off.prompt)).toFixed(2)
        }x)`,
    );
  }
  if (off?.dd?.length && on?.dd?.length) {
    log(
      `vmesh dd with OTLP export: median ${median(on.dd).toFixed(1)} MiB/s vs ` +
        `${median(off.dd).toFixed(1)} MiB/s without`,
    );
  }
}

async function measure(): Promise<void> {
  let images: GuestImages;
  try {
    images = await ensureGuestImages();
  } catch (e) {
    log(`no guest images: ${(e as Error).message}`);
    return;
  }
  log(`guest images ${images.dir}; ${BOOT_RUNS} boot runs, ${DD_RUNS} dd reads each`);
  const boots = await measureBoots(images);
  const dd = await measureDd(images);
  const otel = Deno.env.get("VMESH_BENCH_OTEL") ? await measureOtel() : new Map();
  summary(boots, dd, otel);
}

if (Deno.env.get("VMESH_BENCH_SKIP_BOOT") === undefined) await measure();
