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
 * And `./vmesh boot` with a disk and a nic running a disk and network workload: plain
 * (`--engine interp`), `--record LOG`, `--replay LOG` (in-process, no services), against QEMU
 * with the same devices plain, `rr=record` and `rr=replay` (blkreplay drive, filter-replay on
 * the netdev, a fresh overlay of the data disk each run; QEMU's replay is given 180 s: it has been
 * seen to hang). The runs happen once at module load; nothing asserts on time.
 * VMESH_BENCH_SKIP_REPLAY skips it, VMESH_BENCH_REPLAY_PART=boot runs only the boot figures.
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
    // VMESH_BENCH_REPLAY_PART=boot: only the `vmesh boot` figures.
    if (Deno.env.get("VMESH_BENCH_REPLAY_PART") === "boot") return await bootFigures(images, dir);
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
    await bootFigures(images, dir);
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

const WORKLOAD = "dd if=/dev/vda bs=64k count=16 2>/dev/null | md5sum | cut -c1-12; " +
  "dd if=/dev/urandom of=/dev/vda bs=4k count=64 seek=2048 conv=fsync 2>/dev/null; " +
  "dd if=/dev/vda bs=4k count=64 skip=2048 2>/dev/null | md5sum | cut -c1-12; " +
  "udhcpc -i eth0 -q -n -t 10 -T 2 >/dev/null 2>&1; ping -c 3 -W 2 10.0.2.2 | grep -c bytes.from";

/** Runs a command to its end (killed after `timeoutS`); its wall time in ms and what it printed. */
async function run(
  cmd: string,
  args: string[],
  timeoutS = 600,
): Promise<{ ms: number; out: string }> {
  const t0 = performance.now();
  const signal = AbortSignal.timeout(timeoutS * 1000);
  const o = await new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).output();
  if (signal.aborted) throw new Error(`${cmd} did not finish in ${timeoutS} s`);
  const out = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
  if (o.code !== 0) throw new Error(`${cmd} exited ${o.code}: ${out.slice(-400)}`);
  return { ms: performance.now() - t0, out };
}

async function bootFigures(images: GuestImages, dir: string): Promise<void> {
  const vlog = `${dir}/boot.log`;
  const boot = (extra: string[]) => [
    "boot",
    "--engine",
    "interp",
    "--nic",
    "switch=rrbench",
    ...extra,
    "--",
    WORKLOAD,
  ];
  const v = {
    plain: (await run(VMESH, boot([]))).ms,
    record: (await run(VMESH, boot(["--record", vlog]))).ms,
    replay: (await run(VMESH, boot(["--replay", vlog]))).ms,
    bytes: (await Deno.stat(vlog)).size,
  };
  const overlay = `${dir}/d.qcow2`, qlog = `${dir}/boot.rr`;
  const qemuBoot = async (rr: string | undefined) => {
    await Deno.remove(overlay).catch(() => {});
    await run("qemu-img", ["create", "-f", "qcow2", "-b", images.disk, "-F", "raw", overlay]);
    const devices = rr === undefined
      ? [
        "-drive",
        `file=${overlay},if=none,id=d0`,
        "-device",
        "virtio-blk-device,drive=d0",
        "-netdev",
        "user,id=n0",
        "-device",
        "virtio-net-device,netdev=n0",
      ]
      : [
        "-drive",
        `file=${overlay},if=none,id=img-direct`,
        "-drive",
        "driver=blkreplay,if=none,image=img-direct,id=img-blkreplay",
        "-device",
        "virtio-blk-device,drive=img-blkreplay",
        "-netdev",
        "user,id=n0",
        "-device",
        "virtio-net-device,netdev=n0",
        "-object",
        "filter-replay,id=replay,netdev=n0",
        "-icount",
        `shift=auto,rr=${rr},rrfile=${qlog}`,
      ];
    const args = qemuArgs(images, {
      append: `${batchCmdlineParam(WORKLOAD + "; poweroff -f")}`,
      disk: false,
      net: false,
      extra: devices,
    });
    // QEMU's replay of this run has been seen to hang after the workload's disk part.
    const r = await run("qemu-system-riscv64", args, 180);
    if (!r.out.includes("reboot: Power down")) throw new Error(`qemu: ${r.out.slice(-300)}`);
    return r.ms;
  };
  const plain = await qemuBoot(undefined), record = await qemuBoot("record");
  const bytes = (await Deno.stat(qlog)).size;
  let replay = NaN;
  try {
    replay = await qemuBoot("replay");
  } catch (e) {
    log(`qemu rr=replay of the boot: ${(e as Error).message}`);
  }
  const q = { plain, record, replay, bytes };
  for (const [who, r] of [["vmesh boot --engine interp (disk+nic)", v], ["qemu", q]] as const) {
    log(
      `${who}: boot+workload ${(r.plain / 1000).toFixed(2)} s, recorded ` +
        `${(r.record / 1000).toFixed(2)} s (${(r.record / r.plain).toFixed(2)}x), replayed ` +
        `${(r.replay / 1000).toFixed(2)} s (${(r.replay / r.plain).toFixed(2)}x), log ` +
        `${r.bytes} bytes (${(r.bytes / (r.record / 1000) / 1024).toFixed(1)} KiB per second)`,
    );
  }
  log(
    `boot vmesh/qemu: record ${(v.record / q.record).toFixed(2)}x, replay ` +
      `${(v.replay / q.replay).toFixed(2)}x, log size ${(v.bytes / q.bytes).toFixed(2)}x`,
  );
}

if (Deno.env.get("VMESH_BENCH_SKIP_REPLAY") === undefined) await measure();
