/**
 * The block request path without a guest (`deno bench -A services/disk/blk_path_bench.ts`): a
 * real nats-server, the disk service as a process on a raw image, and the CPU side's
 * `BusBlockClient` (read-ahead off) in this process. Per row: wall time per request, IOPS,
 * MiB/s, and the CPU time each process spent per request (utime + stime from /proc: less
 * sensitive to a loaded host than wall time, and it says where a request's work is done).
 *
 * Rows are measured twice: nats-server and the disk service on this host, and (as root, with
 * `ip`) both in another network namespace reached over a veth (`tests/netns_harness.ts`), where
 * only the client's CPU is known. The runs happen once at module load; nothing asserts on time.
 * VMESH_BENCH_SKIP_BLK_PATH=1 skips it; VMESH_BENCH_BLK_PATH_N sets requests per row (2000).
 * @module
 */

import { fileURLToPath } from "node:url";
import { type Bus, connect, startEmbeddedNats } from "@vmesh/bus";
import { BusBlockClient } from "../cpu/backends/bus_block_client.ts";
import { denoRun, NetnsHosts, type NetnsProc, spawnIn } from "../../tests/netns_harness.ts";

const DISK_MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const N = Number(Deno.env.get("VMESH_BENCH_BLK_PATH_N") ?? "2000");
const IMAGE_BYTES = 64 << 20;
const TICKS_PER_S = 100;

/** CPU ms used so far by process `pid` (undefined when it is not visible here). */
function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12])) * 1000 / TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/** One row: `count` requests of `len` bytes, `depth` in flight, at spread-out offsets. */
interface Row {
  name: string;
  depth: number;
  len: number;
  write: boolean;
}

const ROWS: Row[] = [
  { name: "read 4 KiB QD1", depth: 1, len: 4096, write: false },
  { name: "read 4 KiB QD32", depth: 32, len: 4096, write: false },
  { name: "write 4 KiB QD1", depth: 1, len: 4096, write: true },
  { name: "read 1 MiB QD1", depth: 1, len: 1 << 20, write: false },
  { name: "write 1 MiB QD1", depth: 1, len: 1 << 20, write: true },
];

async function measureRow(
  client: BusBlockClient,
  row: Row,
  pids: Record<string, number | undefined>,
): Promise<string> {
  const count = row.len >= 1 << 20 ? Math.max(20, N >> 4) : N;
  const slots = IMAGE_BYTES / row.len;
  const buf = new Uint8Array(row.len).fill(0x5a);
  let next = 0;
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpuMs(p)]));
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const off = ((next++ * 7919) % slots) * row.len;
      if (row.write) await client.write(off, buf);
      else await client.read(off, row.len);
    }
  };
  await Promise.all(Array.from({ length: row.depth }, worker));
  const ms = performance.now() - t0;
  const cpu = Object.entries(pids).map(([k, p]) => {
    const a = before[k], b = cpuMs(p);
    return a === undefined || b === undefined
      ? `${k} n/a`
      : `${k} ${((b - a) * 1000 / count).toFixed(0)}`;
  });
  return `${row.name}: ${(ms * 1000 / count).toFixed(0)} us/req, ${
    (count / ms * 1000).toFixed(0)
  } IOPS, ` +
    `${(count * row.len / 1048576 / ms * 1000).toFixed(1)} MiB/s; CPU us/req ${cpu.join(", ")}`;
}

async function runRows(
  label: string,
  natsUrl: string,
  disk: NetnsProc & { pid?: number },
  nats?: number,
) {
  const bus: Bus = await connect({ url: natsUrl, name: "blk-path-bench", log: () => {} });
  try {
    const client = new BusBlockClient(bus, { vm: "bp", device: "disk0", readAheadBytes: 0 });
    await client.info();
    const pids = { client: Deno.pid, disk: disk.pid, nats };
    for (const row of ROWS) {
      console.log(`blk_path_bench (${label}): ${await measureRow(client, row, pids)}`);
    }
  } finally {
    await bus.close();
  }
}

/** The disk service's pid, found by its command line (spawnIn does not expose it). */
function findPid(needle: string): number | undefined {
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const cmd = Deno.readTextFileSync(`/proc/${e.name}/cmdline`).replaceAll("\0", " ");
      if (cmd.includes(needle) && !cmd.startsWith("ip ")) return Number(e.name);
    } catch { /* gone */ }
  }
  return undefined;
}

async function sameHost(img: string): Promise<void> {
  const srv = await startEmbeddedNats({ jetstream: false, credentials: undefined });
  try {
    const disk = await spawnIn(
      undefined,
      denoRun(DISK_MAIN, "--vm", "bp", "--device", "disk0", "--image", img),
      { NATS_URL: srv.url },
      /vmesh-disk ready/,
    );
    try {
      await runRows("same host", srv.url, { ...disk, pid: findPid(img) }, srv.pid);
    } finally {
      await disk.kill();
    }
  } finally {
    await srv.stop();
  }
}

async function secondHost(img: string): Promise<void> {
  const tag = `bp${Deno.pid % 10000}`, net = `10.206.${Deno.pid % 250}`;
  const hosts = new NetnsHosts(tag, net);
  try {
    await hosts.addBridge();
    await hosts.addHost("h2", `${net}.2`);
    await hosts.spawn("h2", ["nats-server", "-a", "0.0.0.0", "-p", "4222"], {}, /Server is ready/);
    const disk = await hosts.spawn(
      "h2",
      denoRun(DISK_MAIN, "--vm", "bp", "--device", "disk0", "--image", img),
      { NATS_URL: "nats://127.0.0.1:4222" },
      /vmesh-disk ready/,
    );
    // Same kernel, so /proc shows the namespace's processes too.
    await runRows("disk + nats-server on 2nd host", `nats://${net}.2:4222`, {
      ...disk,
      pid: findPid(img),
    }, findPid("nats-server -a 0.0.0.0 -p 4222"));
  } catch (e) {
    console.log(
      `blk_path_bench: no second host (needs root and iproute2): ${(e as Error).message}`,
    );
  } finally {
    await hosts.close();
  }
}

async function measure(): Promise<void> {
  const img = await Deno.makeTempFile({ prefix: "vmesh-blk-path-", suffix: ".img" });
  try {
    await Deno.truncate(img, IMAGE_BYTES);
    await sameHost(img);
    await secondHost(img);
  } finally {
    await Deno.remove(img);
  }
}

if (!Deno.env.get("VMESH_BENCH_SKIP_BLK_PATH")) await measure();

Deno.bench("blk_path_bench (measured at load)", () => {});
