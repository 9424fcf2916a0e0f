// Sequential 512 KiB I/O through the qcow2 backend against the raw backend (in process, no
// bus), and the same 256 MiB workload under `qemu-img bench` (QEMU's own qcow2 driver,
// writeback cache, queue depth 1) measured in the same run, printed as throughput ratios.
//
//   deno bench -A services/disk/qcow2_bench.ts
import { createQcow2 } from "./qcow2_create.ts";
import { Qcow2Image } from "./qcow2_image.ts";
import { RawFile } from "./raw_file.ts";

const CHUNK = 512 * 1024;
const SIZE = 256 << 20;
const COUNT = SIZE / CHUNK;
const dir = await Deno.makeTempDir({ prefix: "vmesh-qcow2-bench-" });
const data = Uint8Array.from({ length: CHUNK }, (_, i) => (i * 7) & 0xff);

/** MiB/s of `count` sequential 512 KiB requests by `op`, then `done` (a flush). */
async function throughput(
  op: (offset: number) => Promise<unknown>,
  done: () => Promise<unknown> = () => Promise.resolve(),
): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < COUNT; i++) await op(i * CHUNK);
  await done();
  return (SIZE / (1 << 20)) / ((performance.now() - t0) / 1000);
}

/** MiB/s of `qemu-img bench` over the same workload (its own "Run completed in" time). */
async function qemuImgBench(image: string, write: boolean): Promise<number> {
  const args = ["bench", "-f", "qcow2", "-t", "writeback", "-d", "1", "-s", `${CHUNK}`];
  args.push("-S", `${CHUNK}`, "-c", `${COUNT}`, ...(write ? ["-w"] : []), image);
  const out = await new Deno.Command("qemu-img", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  const m = text.match(/Run completed in ([\d.]+) seconds/);
  if (out.code !== 0 || !m) throw new Error(`qemu-img bench failed: ${text}`);
  return (SIZE / (1 << 20)) / Number(m[1]);
}

// Comparison with QEMU: fresh images (allocating writes), then reads of the data; best of
// three runs each, as the machine is shared.
const REPS = 3;
let vmeshWrite = 0, vmeshRead = 0, qemuWrite = 0, qemuRead = 0;
let q: Qcow2Image | undefined;
for (let rep = 0; rep < REPS; rep++) {
  q?.close();
  const path = `${dir}/vmesh${rep}.qcow2`;
  await createQcow2(path, { size: 1 << 30 });
  q = await Qcow2Image.open(path);
  const image = q;
  vmeshWrite = Math.max(
    vmeshWrite,
    await throughput((o) => image.write(o, data), () => image.flush()),
  );
  vmeshRead = Math.max(vmeshRead, await throughput((o) => image.read(o, CHUNK)));
  const qemuPath = `${dir}/qemu${rep}.qcow2`;
  await createQcow2(qemuPath, { size: 1 << 30 });
  qemuWrite = Math.max(qemuWrite, await qemuImgBench(qemuPath, true));
  qemuRead = Math.max(qemuRead, await qemuImgBench(qemuPath, false));
  await Deno.remove(qemuPath);
  if (rep < REPS - 1) await Deno.remove(path);
}
const qcow2 = q!;
const fmt = (v: number) => v.toFixed(0).padStart(6);
console.log(
  `qcow2 sequential 512 KiB, 256 MiB, depth 1 (MiB/s):\n` +
    `  allocating write: vmesh ${fmt(vmeshWrite)}  qemu-img ${fmt(qemuWrite)}  ` +
    `vmesh/qemu ${(vmeshWrite / qemuWrite).toFixed(2)}\n` +
    `  read:             vmesh ${fmt(vmeshRead)}  qemu-img ${fmt(qemuRead)}  ` +
    `vmesh/qemu ${(vmeshRead / qemuRead).toFixed(2)}`,
);

// Per-request costs: raw vs qcow2 over the same 256 MiB, wrapping (writes are in place).
await RawFile.create(`${dir}/raw.img`, SIZE);
const raw = await RawFile.open(`${dir}/raw.img`);
await raw.write(0, new Uint8Array(SIZE));
let n = 0;
const next = () => (n++ % COUNT) * CHUNK;

Deno.bench("raw: write 512 KiB", { group: "write", baseline: true }, async () => {
  await raw.write(next(), data);
});
Deno.bench("qcow2: write 512 KiB (allocated)", { group: "write" }, async () => {
  await qcow2.write(next(), data);
});
Deno.bench("raw: read 512 KiB", { group: "read", baseline: true }, async () => {
  await raw.read(next(), CHUNK);
});
Deno.bench("qcow2: read 512 KiB", { group: "read" }, async () => {
  await qcow2.read(next(), CHUNK);
});

globalThis.addEventListener("unload", () => {
  raw.close();
  qcow2.close();
  Deno.removeSync(dir, { recursive: true });
});
