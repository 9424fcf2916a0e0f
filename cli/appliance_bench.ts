/**
 * Appliance figures (`deno bench -A cli/appliance_bench.ts`): the cached Linux guest (256 MiB,
 * the 64 MiB data disk over a COW/qcow2 overlay) idle at its prompt, saved and shipped, with
 * QEMU in the same run:
 *
 * - vmesh: `./vmesh boot`, `./vmesh snapshot`, `./vmesh export SNAP -o ap.tar`, and
 *   `./vmesh import ap.tar --no-run` on a second nats-server with an empty store (each command's
 *   wall time, process start included; the size of the tar);
 * - QEMU: `qemu-system-riscv64` with the disk as a qcow2 overlay over the same raw image, then on
 *   its HMP monitor `savevm s1` (time; qcow2 growth) and, with `max-bandwidth` 10G (QEMU's
 *   default throttles to 32 MiB/s), `migrate "exec:cat > FILE"` (time; the state file's size), and `qemu-img convert -O qcow2` of the disk into one standalone image
 *   (time, size): QEMU's artifact is that state file plus that image.
 *
 * Runs once at module load, prints the figures and the vmesh/QEMU ratios; asserts nothing on
 * time. VMESH_BENCH_SKIP_APPLIANCE skips it.
 */
import { connect, startEmbeddedNats } from "@vmesh/bus";
import { ConsoleCapture } from "./boot_console.ts";
import { batchCmdlineParam, ensureGuestImages, type GuestImages, qemuArgs } from "../guest/mod.ts";
import { run, until, vmesh } from "../tests/snapshot_test_support.ts";

const log = (line: string) => console.log(`appliance_bench: ${line}`);
const IDLE = "sleep 2; echo READY; sleep 100000";
const mib = (b: number) => (b / 1048576).toFixed(1);

async function timed<T>(f: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await f();
  return [r, performance.now() - t0];
}

interface Figures {
  snapshotMs: number;
  exportMs: number;
  importMs?: number;
  artifactBytes: number;
  detail: string;
}

async function vmeshFigures(dir: string): Promise<Figures> {
  const a = await startEmbeddedNats();
  const b = await startEmbeddedNats();
  const bus = await connect({ url: a.url, name: "appliance-bench", log: () => {} });
  const cap = new ConsoleCapture(bus, "abench");
  const env = { NATS_URL: a.url };
  const boot = vmesh(["boot", "--name", "abench", "--", IDLE], env);
  try {
    await until("the guest's READY", () => cap.text.includes("READY"), 180_000);
    const store = ["--store", `dir:${dir}/store`];
    const [snap, snapshotMs] = await timed(() =>
      run(["snapshot", "abench", "--name", "ab", "--disk-dir", `${dir}/points`, ...store], env)
    );
    if (snap.code) throw new Error(snap.stderr);
    const tar = `${dir}/ab.tar`;
    const [exp, exportMs] = await timed(() => run(["export", "ab", "-o", tar, ...store], env));
    if (exp.code) throw new Error(exp.stderr);
    const [imp, importMs] = await timed(() =>
      run([
        "import",
        tar,
        "--no-run",
        "--disk-dir",
        `${dir}/disksB`,
        "--store",
        `dir:${dir}/storeB`,
      ], { NATS_URL: b.url })
    );
    if (imp.code) throw new Error(imp.stderr);
    return {
      snapshotMs,
      exportMs,
      importMs,
      artifactBytes: (await Deno.stat(tar)).size,
      detail: [snap.stdout, exp.stdout, imp.stdout].map((s) => s.trim()).join(" | "),
    };
  } finally {
    cap.close();
    boot.kill("SIGTERM");
    await boot.output();
    await bus.close();
    await a.stop();
    await b.stop();
  }
}

/** QEMU's HMP monitor on a unix socket: a command, then its output up to the next prompt. */
async function hmp(conn: Deno.UnixConn, line?: string): Promise<string> {
  if (line !== undefined) await conn.write(new TextEncoder().encode(line + "\n"));
  let text = "";
  const buf = new Uint8Array(4096);
  while (!text.endsWith("(qemu) ")) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`QEMU's monitor closed after: ${text}`);
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
  return text;
}

async function qemuFigures(images: GuestImages, dir: string): Promise<Figures> {
  const overlay = `${dir}/q.qcow2`;
  const img = await new Deno.Command("qemu-img", {
    args: ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", images.disk, overlay],
  }).output();
  if (!img.success) throw new Error(new TextDecoder().decode(img.stderr));
  const mon = `${dir}/mon.sock`;
  const q = new Deno.Command("qemu-system-riscv64", {
    args: qemuArgs(images, {
      append: batchCmdlineParam(IDLE),
      disk: false,
      net: false,
      extra: [
        "-drive",
        `file=${overlay},if=none,format=qcow2,id=d0`,
        "-device",
        "virtio-blk-device,drive=d0",
        "-monitor",
        `unix:${mon},server=on,wait=off`,
      ],
    }),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const reading = (async () => {
    for await (const s of q.stdout.pipeThrough(new TextDecoderStream())) text += s;
  })();
  try {
    await until("QEMU's READY", () => text.includes("READY"), 120_000);
    const conn = await Deno.connect({ transport: "unix", path: mon });
    await hmp(conn);
    const before = (await Deno.stat(overlay)).size;
    const [, snapshotMs] = await timed(() => hmp(conn, "savevm s1"));
    const grown = (await Deno.stat(overlay)).size - before;
    const state = `${dir}/q.state`;
    // QEMU throttles migration to 32 MiB/s by default; unthrottled, as migrate_bench.ts.
    await hmp(conn, "migrate_set_parameter max-bandwidth 10G");
    let info = "";
    const [, exportMs] = await timed(async () => {
      await hmp(conn, `migrate "exec:cat > ${state}"`);
      while (!/Migration status: completed/.test(info = await hmp(conn, "info migrate"))) {
        await new Promise((r) => setTimeout(r, 10));
      }
    });
    const qemuTotal = /total time: (\d+) ms/.exec(info)?.[1] ?? "?";
    conn.close();
    const standalone = `${dir}/q-standalone.qcow2`;
    const [, convertMs] = await timed(() =>
      new Deno.Command("qemu-img", {
        args: ["convert", "-O", "qcow2", overlay, standalone],
      }).output()
    );
    const stateBytes = (await Deno.stat(state)).size;
    const diskBytes = (await Deno.stat(standalone)).size;
    return {
      snapshotMs,
      exportMs: exportMs + convertMs,
      artifactBytes: stateBytes + diskBytes,
      detail: `savevm ${snapshotMs.toFixed(0)} ms (qcow2 +${mib(grown)} MiB); migrate exec: ` +
        `${exportMs.toFixed(0)} ms (QEMU's total time ${qemuTotal} ms), state ` +
        `${mib(stateBytes)} MiB; qemu-img convert ` +
        `${convertMs.toFixed(0)} ms, disk ${mib(diskBytes)} MiB`,
    };
  } finally {
    q.kill("SIGKILL");
    await q.status;
    await reading.catch(() => {});
  }
}

if (!Deno.env.get("VMESH_BENCH_SKIP_APPLIANCE")) {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-appliance-bench-" });
  try {
    const v = await vmeshFigures(dir);
    log(`vmesh: ${v.detail}`);
    log(
      `vmesh: snapshot ${v.snapshotMs.toFixed(0)} ms, export ${v.exportMs.toFixed(0)} ms, ` +
        `import ${v.importMs!.toFixed(0)} ms (wall, ./vmesh process start included), ` +
        `appliance ${mib(v.artifactBytes)} MiB`,
    );
    const q = await qemuFigures(images, dir);
    log(`qemu: ${q.detail}`);
    log(
      `vmesh/qemu: snapshot ${(v.snapshotMs / q.snapshotMs).toFixed(2)}x, export ` +
        `${(v.exportMs / q.exportMs).toFixed(2)}x, artifact size ` +
        `${(v.artifactBytes / q.artifactBytes).toFixed(2)}x (${mib(v.artifactBytes)} vs ` +
        `${mib(q.artifactBytes)} MiB)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.bench({ name: "appliance figures (printed above)", n: 1, warmup: 0 }, () => {});
