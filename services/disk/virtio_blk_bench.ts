/**
 * virtio-blk throughput and small-I/O rates against QEMU (`deno bench -A
 * services/disk/virtio_blk_bench.ts`, part of `deno task bench`). Everything below runs under
 * `./vmesh boot` (disk service over NATS) and under `qemu-system-riscv64 -M virt` in the same
 * run, and the ratio vmesh/QEMU is printed per row:
 *
 * 1. Sequential, on the cached data disk (vmesh: copy-on-write overlay; QEMU: snapshot=on), one
 *    guest batch command: a cold buffered `dd` read of 64 MiB from /dev/vda (page cache dropped),
 *    the same read again from the guest's page cache (no disk I/O: what the guest's own CPU
 *    allows, the ceiling of the cold read), a read with `iflag=direct` (1 MiB requests, no page
 *    cache: the device path itself), a buffered write of 64 MiB with `conv=fsync`, and a write
 *    with `oflag=direct`. MiB/s from busybox dd's own report. vmesh runs twice, with the block
 *    client's read-ahead (the default) and with `VMESH_READ_AHEAD_BYTES=0`.
 * 2. Random: `bench/blk_randread.c` (built here with the Debian cross compiler
 *    riscv64-linux-gnu-gcc, static) on an ext4 image of its own made with `mke2fs -d`, attached
 *    read-only (`./vmesh boot --drive IMG,ro`; QEMU `snapshot=on`); the guest mounts it and runs
 *    4 KiB O_DIRECT random reads over the whole device at queue depth 1 and 32 (one thread per
 *    request in flight) for VMESH_BENCH_RAND_SECONDS (default 3) each. IOPS as the program
 *    reports them.
 *
 * 3. The same guest commands with the disk service behind a nats-server in another network
 *    namespace (a second "host", `tests/netns_harness.ts`: a bridge, a veth pair): nats-server
 *    and the disk service run in namespace `h2`, the CPU and console services in the root
 *    namespace reach it over the veth (row "vmesh, disk on 2nd host"). Needs root and `ip`;
 *    skipped with a line saying why otherwise.
 *
 * With VMESH_BENCH_BLK_RUNS=N (default 1) every machine runs N rounds, interleaved, and the
 * median of each row is printed with its range and the ratio of the medians. The runs happen
 * once at module load (Deno.bench repeats its functions); nothing asserts on time.
 * VMESH_BENCH_SKIP_BLK=1 skips it all; VMESH_BENCH_BLK_REMOTE=0 skips the second host.
 * @module
 */

import { fileURLToPath } from "node:url";
import { ensureGuestImages, type GuestImages, runQemuBatch } from "../../guest/mod.ts";
import { timeMarkers } from "../../cli/marker_timer.ts";
import { runGuest } from "../../tests/guest_vm.ts";
import { denoRun, NetnsHosts } from "../../tests/netns_harness.ts";

const VMESH = fileURLToPath(new URL("../../vmesh", import.meta.url));
const RANDREAD_C = fileURLToPath(new URL("./bench/blk_randread.c", import.meta.url));
const LIMIT_MS = 600_000;
const RAND_SECONDS = Number(Deno.env.get("VMESH_BENCH_RAND_SECONDS") ?? "3");
/** Rounds of every measurement (vmesh and QEMU alternate); medians are printed. */
const RUNS = Math.max(1, Number(Deno.env.get("VMESH_BENCH_BLK_RUNS") ?? "1"));

/** Guest command: each dd tagged so the report is parsed by label. */
export const BLK_COMMAND = [
  "echo 3 > /proc/sys/vm/drop_caches",
  "echo phase=read",
  "dd if=/dev/vda of=/dev/null bs=1M count=64",
  "echo phase=cached",
  "dd if=/dev/vda of=/dev/null bs=1M count=64",
  "echo phase=direct_read",
  "dd if=/dev/vda of=/dev/null bs=1M count=64 iflag=direct",
  "echo phase=write",
  "dd if=/dev/zero of=/dev/vda bs=1M count=64 conv=fsync",
  "echo phase=direct_write",
  "dd if=/dev/zero of=/dev/vda bs=1M count=64 oflag=direct",
].join("; ");

/** The sequential rows, in print order, with what each measures. */
const PHASES: [string, string][] = [
  ["read", "sequential read, cold (buffered)"],
  ["cached", "the same from the guest page cache"],
  ["direct_read", "sequential read, O_DIRECT 1 MiB"],
  ["write", "sequential write + fsync (buffered)"],
  ["direct_write", "sequential write, O_DIRECT 1 MiB"],
];

/** MiB/s of each phase's busybox dd report ("N bytes (..) copied, S seconds"). */
export function parsePhases(text: string): Map<string, number> {
  const out = new Map<string, number>();
  // A phase whose dd failed must not take the next phase's report: no "phase=" in between.
  const re = /phase=(\w+)(?:(?!phase=)[\s\S])*?(\d+) bytes \([^)]*\) copied, ([\d.]+) seconds/g;
  for (const m of text.matchAll(re)) {
    const bytes = Number(m[2]), seconds = Number(m[3]);
    if (bytes > 0 && seconds > 0) out.set(m[1], bytes / 1048576 / seconds);
  }
  return out;
}

/** IOPS by queue depth from the lines of blk_randread ("randread qd=Q ios=N ... iops=I"). */
export function parseRandread(text: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const m of text.matchAll(/randread qd=(\d+) ios=(\d+) seconds=([\d.]+) iops=(\d+)/g)) {
    out.set(Number(m[1]), Number(m[4]));
  }
  return out;
}

function log(line: string): void {
  console.log(`virtio_blk_bench: ${line}`);
}

/** Runs `command` in the guest under `./vmesh boot`; the console text. */
async function vmeshBatch(
  command: string,
  extra: string[] = [],
  env?: Record<string, string>,
): Promise<string> {
  const r = await timeMarkers(
    VMESH,
    ["boot", ...extra, "--timeout", String(LIMIT_MS / 1000 - 20), "--", command],
    { markers: [], timeoutMs: LIMIT_MS, waitForExit: true, env },
  );
  return r.stdout + r.output;
}

/** Builds blk_randread and an ext4 image holding it; undefined (and why) when it cannot. */
async function randreadImage(dir: string): Promise<string | undefined> {
  const root = `${dir}/root`;
  await Deno.mkdir(root);
  const run = async (cmd: string, args: string[]) => {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    if (!r.success) throw new Error(`${cmd}: ${new TextDecoder().decode(r.stderr).trim()}`);
  };
  try {
    await run("riscv64-linux-gnu-gcc", [
      "-O2",
      "-static",
      "-pthread",
      "-o",
      `${root}/randread`,
      RANDREAD_C,
    ]);
    await run("mke2fs", ["-q", "-F", "-t", "ext4", "-d", root, `${dir}/rand.img`, "64M"]);
    return `${dir}/rand.img`;
  } catch (e) {
    log(`no random-read image (apt-get install gcc-riscv64-linux-gnu e2fsprogs): ${e}`);
    return undefined;
  }
}

const RAND_COMMAND = `mkdir -p /m && mount -o ro /dev/vda /m && ` +
  `/m/randread /dev/vda 1 ${RAND_SECONDS} && /m/randread /dev/vda 32 ${RAND_SECONDS}`;

/** Samples by machine label, then by row key. */
type Samples = Map<string, Map<string | number, number[]>>;

function addSamples(into: Samples, label: string, m: Map<string | number, number>): void {
  const byKey = into.get(label) ?? new Map<string | number, number[]>();
  for (const [k, v] of m) byKey.set(k, [...(byKey.get(k) ?? []), v]);
  into.set(label, byKey);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** "median unit" (and "[min–max]" over several runs), or n/a. */
function cell(xs: number[] | undefined, unit: string, digits: number): string {
  if (!xs?.length) return "n/a";
  const f = (x: number) => x.toFixed(digits);
  const range = xs.length > 1 ? ` [${f(Math.min(...xs))}–${f(Math.max(...xs))}]` : "";
  return `${f(median(xs))} ${unit}${range}`;
}

const VMESH_SEQ: [string, Record<string, string> | undefined][] = [
  ["vmesh", undefined],
  ["vmesh, read-ahead off", { VMESH_READ_AHEAD_BYTES: "0" }],
];
/** Label of the rows measured with the disk service on the second host. */
const REMOTE = "vmesh, disk on 2nd host";

/** nats-server and disk services in another network namespace, the guest's CPU in this one. */
class SecondHost {
  readonly tag = `bb${Deno.pid % 10000}`;
  readonly net = `10.205.${Deno.pid % 250}`;
  readonly hosts = new NetnsHosts(this.tag, this.net);
  get url(): string {
    return `nats://${this.net}.2:4222`;
  }

  /** Makes the namespace and starts nats-server in it; undefined (and why) when it cannot. */
  static async start(): Promise<SecondHost | undefined> {
    const h = new SecondHost();
    try {
      await h.hosts.addBridge();
      await h.hosts.addHost("h2", `${h.net}.2`);
      await h.hosts.spawn(
        "h2",
        ["nats-server", "-a", "0.0.0.0", "-p", "4222"],
        {},
        /Server is ready/,
      );
      return h;
    } catch (e) {
      log(`no second host (needs root, iproute2 and nats-server): ${(e as Error).message}`);
      await h.hosts.close();
      return undefined;
    }
  }

  /** Runs `command` in VM `vm` whose disk0 is served from h2 by `diskArgs`; the console text. */
  async run(vm: string, diskArgs: string[], command: string): Promise<string> {
    const disk = await this.hosts.spawn(
      "h2",
      denoRun(DISK_MAIN, "--vm", vm, "--device", "disk0", ...diskArgs),
      { NATS_URL: "nats://127.0.0.1:4222" },
      /vmesh-disk ready/,
    );
    try {
      const r = await runGuest(await ensureGuestImages(), this.url, vm, ["disk0"], command);
      return r.output;
    } finally {
      await disk.kill();
    }
  }

  close(): Promise<void> {
    return this.hosts.close();
  }
}

const DISK_MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));

async function measureSequential(images: GuestImages, remote?: SecondHost): Promise<void> {
  const samples: Samples = new Map();
  const labels = [...VMESH_SEQ.map(([l]) => l), ...(remote ? [REMOTE] : [])];
  for (let round = 1; round <= RUNS; round++) {
    if (remote) {
      const dir = await Deno.makeTempDir({ prefix: "vmesh-blk-bench-" });
      try {
        const text = await remote.run("rb", [
          "--image",
          images.disk,
          "--overlay",
          `${dir}/ov.cow`,
        ], BLK_COMMAND);
        const m = parsePhases(text);
        if (m.size === 0) log(`${REMOTE}: no dd report: ${text.slice(-800)}`);
        addSamples(samples, REMOTE, m);
      } catch (e) {
        log(`${REMOTE} failed: ${(e as Error).message}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
    for (const [label, env] of VMESH_SEQ) {
      try {
        const text = await vmeshBatch(BLK_COMMAND, [], env);
        const m = parsePhases(text);
        if (m.size === 0) log(`${label}: no dd report: ${text.slice(-800)}`);
        addSamples(samples, label, m);
      } catch (e) {
        log(`${label} failed: ${(e as Error).message}`);
      }
    }
    try {
      const r = await runQemuBatch(images, BLK_COMMAND, { net: false, timeoutMs: 180_000 });
      addSamples(samples, "qemu", parsePhases(r.output ?? r.console));
    } catch (e) {
      log(`qemu failed: ${(e as Error).message}`);
    }
  }
  const qemu = samples.get("qemu");
  for (const [phase, what] of PHASES) {
    const q = qemu?.get(phase);
    const cells = labels.map((label) => {
      const v = samples.get(label)?.get(phase);
      const ratio = v?.length && q?.length ? ` (${(median(v) / median(q)).toFixed(2)}x)` : "";
      return `${label} ${cell(v, "MiB/s", 1)}${ratio}`;
    });
    log(`dd 64 MiB ${what}: ${cells.join(", ")}, qemu ${cell(q, "MiB/s", 1)}`);
  }
}

async function measureRandom(images: GuestImages, remote?: SecondHost): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-blk-bench-" });
  try {
    const img = await randreadImage(dir);
    if (!img) return;
    const samples: Samples = new Map();
    for (let round = 1; round <= RUNS; round++) {
      try {
        const text = await vmeshBatch(RAND_COMMAND, ["--drive", `${img},ro`]);
        const vm = parseRandread(text);
        if (vm.size === 0) log(`vmesh: no randread report: ${text.slice(-800)}`);
        addSamples(samples, "vmesh", vm);
      } catch (e) {
        log(`vmesh randread failed: ${(e as Error).message}`);
      }
      if (remote) {
        try {
          const text = await remote.run("rr", ["--image", img, "--read-only"], RAND_COMMAND);
          const vm = parseRandread(text);
          if (vm.size === 0) log(`${REMOTE}: no randread report: ${text.slice(-800)}`);
          addSamples(samples, REMOTE, vm);
        } catch (e) {
          log(`${REMOTE} randread failed: ${(e as Error).message}`);
        }
      }
      try {
        const r = await runQemuBatch(images, RAND_COMMAND, {
          net: false,
          disk: false,
          timeoutMs: 180_000,
          extra: [
            "-drive",
            `file=${img},if=none,format=raw,id=d0,snapshot=on`,
            "-device",
            "virtio-blk-device,drive=d0",
          ],
        });
        addSamples(samples, "qemu", parseRandread(r.output ?? r.console));
      } catch (e) {
        log(`qemu randread failed: ${(e as Error).message}`);
      }
    }
    for (const qd of [1, 32]) {
      const q = samples.get("qemu")?.get(qd);
      const cells = ["vmesh", ...(remote ? [REMOTE] : [])].map((label) => {
        const v = samples.get(label)?.get(qd);
        const ratio = v?.length && q?.length ? ` (${(median(v) / median(q)).toFixed(2)}x)` : "";
        return `${label} ${cell(v, "IOPS", 0)}${ratio}`;
      });
      log(`4 KiB random read O_DIRECT, QD${qd}: ${cells.join(", ")}, qemu ${cell(q, "IOPS", 0)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function measure(): Promise<void> {
  const images = await ensureGuestImages();
  const remote = Deno.env.get("VMESH_BENCH_BLK_REMOTE") === "0"
    ? undefined
    : await SecondHost.start();
  try {
    await measureSequential(images, remote);
    await measureRandom(images, remote);
  } finally {
    await remote?.close();
  }
}

if (!Deno.env.get("VMESH_BENCH_SKIP_BLK")) await measure();

Deno.bench("virtio_blk_bench (measured at load)", () => {});
