/**
 * What the translator costs and covers (`deno task bench`, or `deno bench -A` on this file):
 * a Linux boot (the cached guest images, to the batch command's poweroff) and the CPU
 * benchmark program (../../bench/bench.c), each run in this process on a `Machine` with the
 * translator at several hot thresholds and with the interpreter alone. Prints wall and CPU
 * time, regions and modules compiled, bytes of wasm, compile time on the main thread, the
 * share of instructions retired in translated code, entries from TypeScript and helper calls.
 * Ratios against QEMU for the same workloads are in cpu_bench.ts and cli/boot_bench.ts.
 * Runs once at module load (Deno.bench would repeat it); nothing asserts on time.
 */
import process from "node:process";
import { fileURLToPath } from "node:url";
import { Machine } from "../../machine/machine.ts";
import { Hart } from "../../hart/hart.ts";
import { ensureGuestImages } from "../../../../guest/mod.ts";
import { buildProgram } from "../../../../tests/riscv/build.ts";

const THRESHOLDS = (Deno.env.get("VMESH_BENCH_JIT_THRESHOLDS") ?? "100,1000,2000").split(",")
  .map(Number);

function log(line: string): void {
  console.log(`translator_bench: ${line}`);
}

interface Workload {
  name: string;
  machine: (createHart: (cfg: ConstructorParameters<typeof Hart>[0]) => Hart) => Machine;
}

async function runOnce(w: Workload, threshold: number | null): Promise<void> {
  let hart!: Hart;
  const m = w.machine((cfg) =>
    hart = new Hart({
      ...cfg,
      engine: threshold === null ? "interp" : "jit",
      translator: threshold === null ? undefined : { threshold },
    })
  );
  const c0 = process.cpuUsage(), t0 = performance.now();
  const code = await m.run();
  const wall = performance.now() - t0, c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000;
  const base = `${w.name}, ${threshold === null ? "interpreter" : `jit threshold ${threshold}`}: ` +
    `exit ${code}, wall ${wall.toFixed(0)} ms, cpu ${cpu.toFixed(0)} ms, ` +
    `${(hart.instret / 1e6).toFixed(1)}M instructions`;
  const s = hart.translator?.stats;
  if (!s) return log(base);
  log(
    `${base}; ${(100 * s.translatedInsns / hart.instret).toFixed(1)}% translated; ` +
      `${s.regions} regions (${s.regionInsns} guest instructions) in ${s.modules} modules, ` +
      `${(s.wasmBytes / 1e6).toFixed(2)} MB wasm, compile ${s.compileMs.toFixed(0)} ms on the ` +
      `main thread; ${s.entries} entries, ${s.helperCalls} helper calls, ${s.slowExits} slow ` +
      `exits, ${s.invalidations} pages invalidated`,
  );
}

async function measure(): Promise<void> {
  const workloads: Workload[] = [];
  try {
    const g = await ensureGuestImages();
    workloads.push({
      name: "Linux boot",
      machine: (createHart) =>
        new Machine({
          ramSize: 256 << 20,
          bios: g.firmware,
          kernel: g.kernel,
          initrd: g.initramfs,
          append: 'console=ttyS0 vmesh.cmd="true"',
          onConsoleOutput: () => {},
          createHart,
        }),
    });
  } catch (e) {
    log(`no guest images: ${(e as Error).message}`);
  }
  try {
    const src = fileURLToPath(new URL("../../bench/bench.c", import.meta.url));
    const elf = await buildProgram(src, { flags: ["-DVMESH_VIRT", "-DROUNDS=50"] });
    workloads.push({
      name: "cpu_bench",
      machine: (createHart) =>
        new Machine({ ramSize: 128 << 20, kernel: elf, onConsoleOutput: () => {}, createHart }),
    });
  } catch (e) {
    log(`cannot build the CPU benchmark: ${(e as Error).message}`);
  }
  for (const w of workloads) {
    for (const t of [null, ...THRESHOLDS]) {
      try {
        await runOnce(w, t);
      } catch (e) {
        log(`${w.name}: ${(e as Error).message}`);
      }
    }
  }
}

if (Deno.env.get("VMESH_BENCH_SKIP_JIT") === undefined) await measure();
