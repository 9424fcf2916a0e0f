/**
 * virtio-blk throughput against QEMU (`deno bench -A services/disk/virtio_blk_bench.ts`, part
 * of `deno task bench`): the cached guest images boot under `./vmesh boot` (disk service over
 * NATS, copy-on-write overlay) and under `qemu-system-riscv64 -M virt` (snapshot=on), and the
 * guest runs, in one batch command, a cold sequential `dd` read of 64 MiB from /dev/vda and a
 * sequential `dd` write of 64 MiB to it (conv=fsync, so the time includes the flush). MiB/s
 * come from busybox dd's own report; the ratio vmesh/QEMU is printed. The runs happen once at
 * module load (Deno.bench repeats its functions); nothing asserts on time.
 * VMESH_BENCH_SKIP_BLK=1 skips it. Missing: 4 KiB random reads at QD1/QD32 (needs a guest
 * program; busybox has no fio).
 * @module
 */

import { fileURLToPath } from "node:url";
import { ensureGuestImages, runQemuBatch } from "../../guest/mod.ts";
import { timeMarkers } from "../../cli/marker_timer.ts";

const VMESH = fileURLToPath(new URL("../../vmesh", import.meta.url));
const LIMIT_MS = 600_000;

/** Guest command: read then write 64 MiB, each tagged so the report is parsed by label. */
export const BLK_COMMAND = "echo 3 > /proc/sys/vm/drop_caches; echo phase=read; " +
  "dd if=/dev/vda of=/dev/null bs=1M count=64; echo phase=write; " +
  "dd if=/dev/zero of=/dev/vda bs=1M count=64 conv=fsync";

/** MiB/s of each phase's busybox dd report ("N bytes (..) copied, S seconds"). */
export function parsePhases(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = /phase=(\w+)[\s\S]*?(\d+) bytes \([^)]*\) copied, ([\d.]+) seconds/g;
  for (const m of text.matchAll(re)) {
    const bytes = Number(m[2]), seconds = Number(m[3]);
    if (bytes > 0 && seconds > 0) out.set(m[1], bytes / 1048576 / seconds);
  }
  return out;
}

function log(line: string): void {
  console.log(`virtio_blk_bench: ${line}`);
}

async function measure(): Promise<void> {
  const images = await ensureGuestImages();
  let vm = new Map<string, number>(), qemu = new Map<string, number>();
  try {
    const r = await timeMarkers(
      VMESH,
      ["boot", "--timeout", String(LIMIT_MS / 1000 - 20), "--", BLK_COMMAND],
      { markers: [], timeoutMs: LIMIT_MS, waitForExit: true },
    );
    vm = parsePhases(r.stdout + r.output);
    if (vm.size === 0) log(`vmesh: no dd report: ${(r.stdout + r.output).slice(-800)}`);
  } catch (e) {
    log(`vmesh failed: ${(e as Error).message}`);
  }
  try {
    const r = await runQemuBatch(images, BLK_COMMAND, { net: false, timeoutMs: 180_000 });
    qemu = parsePhases(r.output ?? r.console);
  } catch (e) {
    log(`qemu failed: ${(e as Error).message}`);
  }
  for (const phase of ["read", "write"]) {
    const v = vm.get(phase), q = qemu.get(phase);
    const f = (x?: number) => x === undefined ? "n/a" : `${x.toFixed(1)} MiB/s`;
    const ratio = v !== undefined && q !== undefined ? ` = ${(v / q).toFixed(2)}x QEMU` : "";
    log(`dd 64 MiB sequential ${phase}: vmesh ${f(v)}, qemu ${f(q)}${ratio}`);
  }
}

if (!Deno.env.get("VMESH_BENCH_SKIP_BLK")) await measure();

Deno.bench("virtio_blk_bench (measured at load)", () => {});
