/**
 * SMP benchmark (`deno task bench`, or `deno bench -A services/cpu/smp_bench.ts`), vmesh and
 * `qemu-system-riscv64` in the same run on the cached guest images:
 *
 * 1. boot to the shell prompt with `--smp 1`, `2` and `4` (`vmesh run`, the translator; harts in
 *    turn and with `--smp-threads`) and QEMU with the same `-smp`, VMESH_BENCH_SMP_RUNS
 *    (default 2) runs each, median;
 * 2. scaling: two parallel `md5sum` jobs over 32 MiB of zeros each, timed inside the guest by
 *    /proc/uptime, with 1 and with 2 harts (`./vmesh boot --smp N`, QEMU `-smp N`):
 *    time(1 hart) / time(2 harts) for each;
 * 2b. the same scaling on `vmesh run`, the command typed at the prompt: the translator with harts
 *    in turn, and `--smp-threads` (a Worker per hart) under both engines, with the host CPU
 *    seconds each run used (this 2-core host is shared: a run may not get both cores);
 * 2c. MMIO cost per access (`bench/mmio.c`, timed by the guest's time CSR): UART loads (the
 *    main thread's device: a mailbox round trip with `--smp-threads`), stores (posted) and a
 *    store then a load (the load waits for the store), CLINT mtime and PLIC priority loads
 *    (served in the hart's thread), harts in turn vs `--smp-threads` vs QEMU;
 * 3. idle: host CPU seconds a 4-hart `vmesh run` (harts in turn, and with `--smp-threads`) and
 *    `qemu -smp 4` use in 10 s sitting at the prompt (the guest still programs a timer every
 *    few ms while idle, so none is zero).
 *
 * The runs happen once at module load, as in cpu_bench.ts; nothing asserts on time.
 * VMESH_BENCH_SKIP_SMP skips it all.
 */
import { fileURLToPath } from "node:url";
import {
  ensureGuestImages,
  GUEST_PROMPT,
  type GuestImages,
  imageArgs,
  qemuArgs,
  runQemuBatch,
  vmeshRunArgs,
} from "../../guest/mod.ts";
import { timeMarkers } from "../../cli/marker_timer.ts";
import { buildProgram } from "../../tests/riscv/build.ts";
import { runQemu, runVmesh } from "../../tests/riscv/run.ts";

const VMESH = fileURLToPath(new URL("../../vmesh", import.meta.url));
const CLI = fileURLToPath(new URL("../../cli/main.ts", import.meta.url));
const RUNS = Number(Deno.env.get("VMESH_BENCH_SMP_RUNS") ?? "2");
const LIMIT_MS = 300_000;
const HARTS = [1, 2, 4];

const log = (line: string) => console.log(`smp_bench: ${line}`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const runArgs = (images: GuestImages, smp: number) =>
  vmeshRunArgs(images, { smp, timeoutS: LIMIT_MS / 1000 });

async function promptMs(cmd: string, args: string[]): Promise<number> {
  const r = await timeMarkers(cmd, args, { markers: [GUEST_PROMPT], timeoutMs: LIMIT_MS });
  const t = r.at[GUEST_PROMPT];
  if (t === undefined) throw new Error(`no prompt (exit ${r.code}): ${r.output.slice(-300)}`);
  return t;
}

async function measureBoots(images: GuestImages): Promise<void> {
  for (const harts of HARTS) {
    const v: number[] = [], t: number[] = [], q: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      try {
        v.push(await promptMs(VMESH, runArgs(images, harts)));
        t.push(await promptMs(VMESH, [...runArgs(images, harts), "--smp-threads"]));
        q.push(
          await promptMs("qemu-system-riscv64", qemuArgs(images, { net: false, smp: harts })),
        );
      } catch (e) {
        log(`boot --smp ${harts} failed: ${(e as Error).message}`);
      }
    }
    if (v.length && q.length) {
      log(
        `boot to prompt --smp ${harts} (median of ${v.length}): vmesh run ` +
          `${(median(v) / 1000).toFixed(2)} s, with --smp-threads ${
            (median(t) / 1000).toFixed(2)
          } s, qemu ${(median(q) / 1000).toFixed(2)} s, ` +
          `vmesh/qemu ${(median(v) / median(q)).toFixed(2)}x, threads/qemu ${
            (median(t) / median(q)).toFixed(2)
          }x`,
      );
    }
  }
}

/** Two parallel jobs, timed by the guest's /proc/uptime (printed as `SMPWORK start end`). */
const WORK = "a=$(cut -d' ' -f1 /proc/uptime); " +
  "for i in 1 2; do (dd if=/dev/zero bs=64k count=512 2>/dev/null | md5sum >/dev/null) & done; " +
  "wait; b=$(cut -d' ' -f1 /proc/uptime); echo SMPWORK $a $b";

function workSeconds(text: string): number {
  const m = text.match(/SMPWORK ([\d.]+) ([\d.]+)/);
  if (!m) throw new Error(`no SMPWORK line in: ${text.slice(-300)}`);
  return Number(m[2]) - Number(m[1]);
}

async function vmeshWork(images: GuestImages, harts: number): Promise<number> {
  const out = await new Deno.Command(VMESH, {
    args: [
      "boot",
      "--smp",
      String(harts),
      ...imageArgs(images),
      "--timeout",
      String(LIMIT_MS / 1000),
      "--",
      WORK,
    ],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  return workSeconds(new TextDecoder().decode(out.stdout));
}

async function measureScaling(images: GuestImages): Promise<void> {
  const t = { vmesh: new Map<number, number>(), qemu: new Map<number, number>() };
  for (const harts of [1, 2]) {
    try {
      t.vmesh.set(harts, await vmeshWork(images, harts));
      const q = await runQemuBatch(images, WORK, { smp: harts, net: false, timeoutMs: LIMIT_MS });
      t.qemu.set(harts, workSeconds(q.output ?? q.console));
    } catch (e) {
      log(`parallel work with ${harts} harts failed: ${(e as Error).message}`);
    }
  }
  for (const [who, m] of Object.entries(t)) {
    const one = m.get(1), two = m.get(2);
    if (one === undefined || two === undefined) continue;
    log(
      `2 parallel md5sum jobs (32 MiB each), ${who}: 1 hart ${one.toFixed(2)} s, ` +
        `2 harts ${two.toFixed(2)} s, scaling ${(one / two).toFixed(2)}x`,
    );
  }
}

/**
 * `WORK` typed at the prompt of `vmesh run` (with `extra` flags): its SMPWORK seconds and the
 * host CPU seconds the process used meanwhile (every hart thread included).
 */
async function vmeshRunWork(
  images: GuestImages,
  harts: number,
  extra: string[],
): Promise<{ s: number; cpu: number; others: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", CLI, ...runArgs(images, harts), ...extra],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const dec = new TextDecoder(), enc = new TextEncoder();
  let text = "";
  const reader = child.stdout.getReader();
  const writer = child.stdin.getWriter();
  const stderr = new Response(child.stderr).text();
  try {
    let typed = false, cpu0 = 0, busy0 = 0;
    // The whole line: output arrives in chunks, and one may end inside the second number.
    while (!/SMPWORK [\d.]+ [\d.]+\r?\n/.test(text)) {
      const { value, done } = await reader.read();
      if (done) {
        const { code } = await child.status;
        throw new Error(
          `ended (exit ${code}) before the work: ${text.slice(-300)}\n${
            (await stderr).slice(-600)
          }`,
        );
      }
      text += dec.decode(value, { stream: true });
      if (!typed && text.includes(GUEST_PROMPT)) {
        typed = true;
        cpu0 = cpuSeconds(child.pid);
        busy0 = hostBusySeconds();
        await writer.write(enc.encode(WORK + "; poweroff -f\n"));
      }
    }
    const cpu = cpuSeconds(child.pid) - cpu0;
    return { s: workSeconds(text), cpu, others: hostBusySeconds() - busy0 - cpu };
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await stderr.catch(() => "");
  }
}

async function measureThreadScaling(images: GuestImages): Promise<void> {
  const modes: [string, string[]][] = [
    ["vmesh run --engine jit (harts in turn)", ["--engine", "jit"]],
    ["vmesh run --smp-threads --engine jit", ["--smp-threads", "--engine", "jit"]],
    ["vmesh run --smp-threads --engine interp", ["--smp-threads", "--engine", "interp"]],
  ];
  const q = new Map<number, number>();
  for (const harts of [1, 2]) {
    try {
      const r = await runQemuBatch(images, WORK, { smp: harts, net: false, timeoutMs: LIMIT_MS });
      q.set(harts, workSeconds(r.output ?? r.console));
    } catch (e) {
      log(`qemu parallel work with ${harts} harts failed: ${(e as Error).message}`);
    }
  }
  for (const [name, extra] of modes) {
    const t = new Map<number, { s: number; cpu: number; others: number }>();
    for (const harts of [1, 2]) {
      try {
        t.set(harts, await vmeshRunWork(images, harts, extra));
      } catch (e) {
        log(`${name}, ${harts} harts, failed: ${(e as Error).message}`);
      }
    }
    const one = t.get(1), two = t.get(2);
    if (one === undefined || two === undefined) continue;
    const f = (r: { s: number; cpu: number; others: number }) =>
      `${r.s.toFixed(2)} s (host CPU ${r.cpu.toFixed(2)} s = ${(r.cpu / r.s).toFixed(2)} cores, ` +
      `other processes ${r.others.toFixed(2)} s)`;
    log(
      `2 parallel md5sum jobs (32 MiB each), ${name}: 1 hart ${f(one)}, ` +
        `2 harts ${f(two)}, scaling ${(one.s / two.s).toFixed(2)}x`,
    );
  }
  const q1 = q.get(1), q2 = q.get(2);
  if (q1 !== undefined && q2 !== undefined) {
    log(
      `2 parallel md5sum jobs (32 MiB each), qemu (same run): 1 hart ${q1.toFixed(2)} s, ` +
        `2 harts ${q2.toFixed(2)} s, scaling ${(q1 / q2).toFixed(2)}x`,
    );
  }
}

/** `mmio <what> <ps>` lines of bench/mmio.c's output, as ns per access. */
function mmioNs(out: string): Map<string, number> {
  return new Map([...out.matchAll(/^mmio (\S+) (\d+)/gm)].map((m) => [m[1], Number(m[2]) / 1000]));
}

async function measureMmio(): Promise<void> {
  const src = fileURLToPath(new URL("./bench/mmio.c", import.meta.url));
  const elf = await buildProgram(src, { flags: ["-DVMESH_VIRT"] });
  const rows: [string, Map<string, number>][] = [];
  for (
    const [name, extra] of [
      ["vmesh run --engine interp", ["--engine", "interp"]],
      ["vmesh run --smp-threads", ["--smp-threads"]],
      ["vmesh run --engine jit", ["--engine", "jit"]],
    ] as [string, string[]][]
  ) {
    const r = await runVmesh(elf, 120_000, extra);
    rows.push([name, mmioNs(r.stdout)]);
  }
  rows.push(["qemu", mmioNs((await runQemu(elf, "virt")).stdout)]);
  for (const [name, ns] of rows) {
    const f = (k: string) => `${k} ${(ns.get(k) ?? NaN).toFixed(2)}`;
    log(
      `MMIO ns per access, ${name}: ${
        ["uart-load", "uart-store", "uart-store-load", "clint-load", "plic-load"].map(f).join(", ")
      }`,
    );
  }
}

/** CPU seconds every process of the host used since boot (busy time of /proc/stat's cpu line). */
function hostBusySeconds(): number {
  const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
  return (f[1] + f[2] + f[3] + f[6] + f[7] + f[8]) / 100;
}

/** utime + stime of process `pid`, in seconds. */
function cpuSeconds(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
}

/** Host CPU seconds `cmd args` uses in 10 s at the guest's prompt (after 2 s of settling). */
async function idleCpuSeconds(cmd: string, args: string[]): Promise<number> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const dec = new TextDecoder();
    let text = "";
    const reader = child.stdout.getReader();
    while (!text.includes(GUEST_PROMPT)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`ended before the prompt: ${text.slice(-300)}`);
      text += dec.decode(value, { stream: true });
    }
    const drain = (async () => {
      while (!(await reader.read()).done) { /* discard */ }
    })();
    // Let boot-time work (deferred init, translation) settle before measuring.
    await new Promise((r) => setTimeout(r, 2000));
    const c0 = cpuSeconds(child.pid);
    await new Promise((r) => setTimeout(r, 10_000));
    const used = cpuSeconds(child.pid) - c0;
    child.kill("SIGKILL");
    await drain.catch(() => {});
    return used;
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
  }
}

async function measureIdle(images: GuestImages): Promise<void> {
  try {
    const args = runArgs(images, 4);
    const v = await idleCpuSeconds(Deno.execPath(), ["run", "-A", "--quiet", CLI, ...args]);
    const t = await idleCpuSeconds(Deno.execPath(), [
      "run",
      "-A",
      "--quiet",
      CLI,
      ...args,
      "--smp-threads",
    ]);
    const q = await idleCpuSeconds(
      "qemu-system-riscv64",
      qemuArgs(images, { net: false, disk: false, smp: 4 }),
    );
    log(
      `idle 4-hart guest at its prompt, host CPU in 10 s: vmesh run ${v.toFixed(2)} s, ` +
        `vmesh run --smp-threads ${t.toFixed(2)} s, qemu ${q.toFixed(2)} s, ` +
        `vmesh/qemu ${(v / q).toFixed(2)}x, threads/qemu ${(t / q).toFixed(2)}x`,
    );
  } catch (e) {
    log(`idle measurement failed: ${(e as Error).message}`);
  }
}

/** The host's load average and the busiest other processes (the host is shared). */
function logHostLoad(when: string): void {
  const load = Deno.readTextFileSync("/proc/loadavg").trim();
  const ps = new Deno.Command("ps", { args: ["-eo", "pcpu,comm", "--sort=-pcpu"] }).outputSync();
  const top = new TextDecoder().decode(ps.stdout).split("\n").slice(1, 4).map((l) => l.trim());
  log(`host load ${when}: loadavg ${load}; top %CPU: ${top.join(", ")}`);
}

if (!Deno.env.get("VMESH_BENCH_SKIP_SMP")) {
  const images = await ensureGuestImages();
  logHostLoad("before");
  // VMESH_BENCH_SMP_ONLY=boot|scaling|threads|mmio|idle runs one part (threads: with mmio).
  const only = Deno.env.get("VMESH_BENCH_SMP_ONLY");
  const want = (part: string, ...groups: string[]) =>
    only === undefined || only === part || groups.includes(only);
  if (want("boot")) await measureBoots(images);
  if (want("scaling")) await measureScaling(images);
  if (want("threads")) await measureThreadScaling(images);
  if (want("mmio", "threads")) await measureMmio();
  if (want("idle")) await measureIdle(images);
  logHostLoad("after");
}
