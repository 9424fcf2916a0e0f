/**
 * Load benchmark (`deno task bench`, or `deno bench -A tests/load_bench.ts`): N Linux VMs
 * (VMESH_BENCH_LOAD_VMS, default 8) booted at once on this host, sharing one nats-server, one
 * disk service process and one switch (tests/load_vms.ts), against N `qemu-system-riscv64`
 * guests at once on the same images in the same run: time until every guest shows its prompt,
 * resident memory per VM (vmesh: its CPU service process, plus the shared processes divided by
 * N; QEMU: its process), and the host's load average, since on a shared 2-core machine the
 * figures move with what else runs. VMESH_BENCH_LOAD_RUNS (default 1) rounds, vmesh and QEMU
 * alternating; VMESH_BENCH_SKIP_LOAD skips it. Like boot_bench.ts, it measures once at module
 * load and asserts nothing.
 */

import { bootMany, bootManyQemu, hostLoad } from "./load_vms.ts";

const VMS = Number(Deno.env.get("VMESH_BENCH_LOAD_VMS") ?? "8");
const RUNS = Number(Deno.env.get("VMESH_BENCH_LOAD_RUNS") ?? "1");

const log = (line: string) => console.log(`load_bench: ${line}`);
const sec = (ms: number) => (ms / 1000).toFixed(2);
const mib = (kib: number) => (kib / 1024).toFixed(0);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function measure(): Promise<void> {
  const l = hostLoad();
  log(`${VMS} VMs at once, ${RUNS} round(s); host: ${l.cpus} CPUs, load ${l.load1} at the start`);
  for (let i = 1; i <= RUNS; i++) {
    try {
      const v = await bootMany(VMS);
      const shared = v.sharedRssKiB.disk + v.sharedRssKiB.net + v.sharedRssKiB.nats;
      const perVm = mean(v.cpuRssKiB) + shared / VMS;
      const q = await bootManyQemu(VMS);
      const qPerVm = mean(q.rssKiB);
      log(
        `round ${i}: all ${VMS} prompts: vmesh ${sec(v.allPromptsMs)} s (first ${
          sec(Math.min(...v.promptMs))
        } s), qemu ${sec(q.allPromptsMs)} s (first ${sec(Math.min(...q.promptMs))} s): ${
          (v.allPromptsMs / q.allPromptsMs).toFixed(2)
        }x`,
      );
      log(
        `round ${i}: memory per VM: vmesh ${mib(perVm)} MiB (CPU service ${
          mib(mean(v.cpuRssKiB))
        } MiB + shared disk ${mib(v.sharedRssKiB.disk)}, switch ${mib(v.sharedRssKiB.net)}, ` +
          `nats ${mib(v.sharedRssKiB.nats)} MiB / ${VMS}), qemu ${mib(qPerVm)} MiB: ${
            (perVm / qPerVm).toFixed(2)
          }x; guests: 256 MiB RAM each`,
      );
      log(
        `round ${i}: isolation: ${
          v.crossTalk.length ? v.crossTalk.join("; ") : "no cross-talk"
        }; addresses ${v.addresses.join(" ")}; load ${v.load.before} -> ${v.load.atPrompts}`,
      );
    } catch (e) {
      log(`round ${i} failed: ${(e as Error).message}`);
    }
  }
}

if (Deno.env.get("VMESH_BENCH_SKIP_LOAD") === undefined) await measure();
