/**
 * Record/replay benchmark (`deno task bench`, or `deno bench -A services/cpu/replay/replay_bench.ts`):
 * the cached Linux guest boots and powers off (`vmesh.cmd="poweroff -f"`), in one run each:
 *
 * - vmesh: `vmesh run --engine interp`, then `--record LOG`, then `--replay LOG`;
 * - QEMU: plain, then `-icount shift=auto,rr=record,rrfile=LOG`, then `rr=replay`;
 *
 * and prints wall times, recording's slowdown, replay speed and log bytes per second of boot for
 * each, with vmesh/QEMU ratios. The runs happen once at module load; nothing asserts on time.
 * VMESH_BENCH_SKIP_REPLAY skips it.
 */
import { fileURLToPath } from "node:url";
import {
  batchCmdlineParam,
  ensureGuestImages,
  type GuestImages,
  qemuArgs,
  vmeshRunArgs,
} from "../../../guest/mod.ts";

const VMESH = fileURLToPath(new URL("../../../vmesh", import.meta.url));
const log = (line: string) => console.log(`replay_bench: ${line}`);

async function timed(cmd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const ms = performance.now() - t0;
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!text.includes("reboot: Power down") || (out.code !== 0 && cmd !== VMESH)) {
    throw new Error(`${cmd} did not power off (exit ${out.code}): ${text.slice(-300)}`);
  }
  if (cmd === VMESH && / diverged /.test(text)) throw new Error(`replay diverged: ${text}`);
  return ms;
}

const POWEROFF = batchCmdlineParam("poweroff -f");
const vmeshArgs = (images: GuestImages, extra: string[]) =>
  vmeshRunArgs(images, { engine: "interp", append: POWEROFF, extra });
const qemu = (images: GuestImages, rr: string[]) =>
  qemuArgs(images, { append: POWEROFF, disk: false, net: false, extra: rr });

async function measure(): Promise<void> {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-replay-bench-" });
  try {
    const vlog = `${dir}/vmesh.log`, qlog = `${dir}/qemu.rr`;
    const v = {
      plain: await timed(VMESH, vmeshArgs(images, [])),
      record: await timed(VMESH, vmeshArgs(images, ["--record", vlog])),
      replay: await timed(VMESH, vmeshArgs(images, ["--replay", vlog])),
      bytes: (await Deno.stat(vlog)).size,
    };
    const icount = (mode: string) => ["-icount", `shift=auto,rr=${mode},rrfile=${qlog}`];
    const q = {
      plain: await timed("qemu-system-riscv64", qemu(images, [])),
      record: await timed("qemu-system-riscv64", qemu(images, icount("record"))),
      replay: await timed("qemu-system-riscv64", qemu(images, icount("replay"))),
      bytes: (await Deno.stat(qlog)).size,
    };
    for (const [who, r] of [["vmesh run --engine interp", v], ["qemu", q]] as const) {
      log(
        `${who}: boot+poweroff ${(r.plain / 1000).toFixed(2)} s, recorded ` +
          `${(r.record / 1000).toFixed(2)} s (${(r.record / r.plain).toFixed(2)}x), replayed ` +
          `${(r.replay / 1000).toFixed(2)} s (${(r.replay / r.plain).toFixed(2)}x), log ` +
          `${r.bytes} bytes (${(r.bytes / (r.record / 1000) / 1024).toFixed(1)} KiB per second)`,
      );
    }
    log(
      `vmesh/qemu: record ${(v.record / q.record).toFixed(2)}x, replay ` +
        `${(v.replay / q.replay).toFixed(2)}x, log size ${(v.bytes / q.bytes).toFixed(3)}x`,
    );
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (Deno.env.get("VMESH_BENCH_SKIP_REPLAY") === undefined) await measure();
