/**
 * Record/replay benchmark (`deno task bench`, or `deno bench -A services/cpu/replay/replay_bench.ts`):
 * the cached Linux guest boots and powers off (`vmesh.cmd="poweroff -f"`), in one run each:
 *
 * - vmesh: `vmesh run --engine interp`, then `--record LOG`, then `--replay LOG`;
 * - QEMU: plain, then `-icount shift=auto,rr=record,rrfile=LOG`, then `rr=replay`;
 *
 * and prints wall times, recording's slowdown, replay speed and log bytes per second of boot for
 * each, with vmesh/QEMU ratios. Then reverse execution on those recordings, the same gdb-multiarch
 * script against both (`vmesh run --replay LOG --gdb`, QEMU's `rr=replay,rrsnapshot=init` with
 * `-gdb`): break at the kernel entry and 0x80200040, two stepi, then the time of two
 * reverse-stepi and of a reverse-continue back to the entry (QEMU is given 60 s for them). The
 * runs happen once at module load; nothing asserts on time. VMESH_BENCH_SKIP_REPLAY skips it.
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
const GDB_PORT_RE = /gdb stub on tcp:127\.0\.0\.1:(\d+)/;
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
    await reverseFigures(images, dir, vlog);
  } catch (e) {
    log(`failed: ${(e as Error).message}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** gdb's script; `mark N` lines print a timestamp, read back by {@link marks}. */
const REVERSE_SCRIPT = [
  "break *0x80200000",
  "continue",
  "break *0x80200040",
  "continue",
  "stepi",
  "stepi",
  "mark 0",
  "reverse-stepi",
  "reverse-stepi",
  "mark 1",
  "reverse-continue",
  "mark 2",
  "info registers pc",
].map((c) =>
  c.startsWith("mark ") ? `python print("MARK ${c.slice(5)}", __import__("time").time())` : c
);

/** Seconds between the marks gdb printed; undefined where gdb did not get there. */
function marks(out: string): { back2: number | undefined; backToEntry: number | undefined } {
  const t = new Map([...out.matchAll(/^MARK (\d) ([\d.]+)$/gm)].map((m) => [m[1], Number(m[2])]));
  const d = (a: string, b: string) => t.has(a) && t.has(b) ? t.get(b)! - t.get(a)! : undefined;
  const atEntry = /^pc\s+0x80200000\s/m.test(out);
  return { back2: d("0", "1"), backToEntry: atEntry ? d("1", "2") : undefined };
}

async function gdbScript(port: number, timeoutS: number): Promise<string> {
  const args = ["-nx", "-batch", "-ex", "set architecture riscv:rv64"];
  args.push("-ex", `target remote 127.0.0.1:${port}`);
  for (const c of REVERSE_SCRIPT) args.push("-ex", c);
  const child = new Deno.Command("gdb-multiarch", { args, stdout: "piped", stderr: "piped" })
    .spawn();
  const kill = setTimeout(() => child.kill("SIGKILL"), timeoutS * 1000);
  const out = await child.output();
  clearTimeout(kill);
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

async function reverseFigures(images: GuestImages, dir: string, vlog: string): Promise<void> {
  // vmesh: the replay of the recording above, under gdb.
  const vm = new Deno.Command(VMESH, {
    args: vmeshArgs(images, ["--replay", vlog, "--gdb", "tcp:127.0.0.1:0", "-S"]),
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const reader = vm.stderr.getReader();
  let err = "";
  while (!GDB_PORT_RE.test(err)) {
    const { value, done } = await reader.read();
    if (done) break;
    err += new TextDecoder().decode(value);
  }
  const vOut = await gdbScript(Number(GDB_PORT_RE.exec(err)?.[1] ?? 0), 120);
  try {
    vm.kill("SIGKILL");
  } catch { /* gone */ }
  await vm.status;
  // QEMU: a recording with a snapshot to go back to (rrsnapshot needs a qcow2 drive).
  const rr = `${dir}/rr.qcow2`, qlog = `${dir}/qemu-rev.rr`;
  await new Deno.Command("qemu-img", { args: ["create", "-f", "qcow2", rr, "1G"] }).output();
  const icount = (mode: string) => [
    "-icount",
    `shift=auto,rr=${mode},rrfile=${qlog},rrsnapshot=init`,
    "-drive",
    `file=${rr},if=none,id=rr`,
  ];
  await timed("qemu-system-riscv64", qemu(images, icount("record")));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const q = new Deno.Command("qemu-system-riscv64", {
    args: qemu(images, [...icount("replay"), "-gdb", `tcp:127.0.0.1:${port}`, "-S"]),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 1000));
  const qOut = await gdbScript(port, 60);
  try {
    q.kill("SIGKILL");
  } catch { /* gone */ }
  await q.status;
  const v = marks(vOut), qm = marks(qOut);
  const s = (x: number | undefined) => x === undefined ? "not done" : `${x.toFixed(2)} s`;
  const ratio = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? "n/a" : `${(a / b).toFixed(2)}x`;
  log(
    `reverse: vmesh 2x reverse-stepi ${s(v.back2)}, reverse-continue to the entry ` +
      `${s(v.backToEntry)}; qemu ${s(qm.back2)}, ${s(qm.backToEntry)} (60 s allowed); ` +
      `vmesh/qemu ${ratio(v.back2, qm.back2)}, ${ratio(v.backToEntry, qm.backToEntry)}`,
  );
  if (v.back2 === undefined || v.backToEntry === undefined) log(`vmesh gdb session: ${vOut}`);
}

if (Deno.env.get("VMESH_BENCH_SKIP_REPLAY") === undefined) await measure();
