/**
 * Live-migration benchmark (`deno task bench`, or `deno bench -A
 * services/cpu/migration/migrate_bench.ts`): the cached Linux guest (256 MiB, no disk, no NIC)
 * is migrated once idle at its prompt and once busy (rewriting 16 MiB of tmpfs with
 * /dev/urandom data in a loop), in one run each:
 *
 * - vmesh: console service and a CPU service on a private nats-server, a second CPU service
 *   with `--incoming --host bench`, then `vmesh.<vm>.ctl.migrate` (downtime aim 30 ms);
 * - QEMU: `qemu-system-riscv64` and a twin started with `-incoming unix:SOCK`, then over QMP
 *   (unix socket) `migrate-set-parameters` (downtime-limit 30 ms, max-bandwidth 10 GB/s, so
 *   neither side is throttled) and `migrate`, polling `query-migrate` until completed;
 *
 * and prints downtime, total time and bytes sent for each, with vmesh/QEMU ratios. vmesh's
 * downtime is from its source's pause (after the last batch of guest instructions) to the
 * target's first batch; QEMU's is its own `downtime` (source stop to the end of the migration
 * stream on the source). Runs once at module load; nothing asserts on time.
 * VMESH_BENCH_SKIP_MIGRATE skips it; VMESH_BENCH_MIGRATE_RUNS repeats each case;
 * VMESH_BENCH_MIGRATE_CASES=idle,busy picks cases.
 */
import { vm as vmContract } from "@vmesh/bus";
import { ConsoleCapture } from "../../../cli/boot_console.ts";
import {
  batchCmdlineParam,
  ensureGuestImages,
  type GuestImages,
  qemuArgs,
} from "../../../guest/mod.ts";
import {
  type ServiceProcess,
  startService,
  startTestBus,
} from "../../../tests/services_harness.ts";
import { linuxCpuArgs } from "../../../tests/guest_vm.ts";

const log = (line: string) => console.log(`migrate_bench: ${line}`);

/** The guests: each prints READY once it is in its steady state. */
const CASES = {
  idle: "sleep 2; echo READY; sleep 100000",
  busy: "echo READY; while true; do dd if=/dev/urandom of=/tmp/x bs=1M count=16 2>/dev/null; done",
} as const;
type Case = keyof typeof CASES;

interface Figures {
  downtimeMs: number;
  totalMs: number;
  bytes: number;
  rounds: number;
  /** vmesh: what the downtime is made of. */
  detail?: string;
}

async function until(what: string, ok: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function vmeshMigration(images: GuestImages, c: Case): Promise<Figures> {
  const tb = await startTestBus();
  const url = tb.nats.url;
  const procs: ServiceProcess[] = [];
  const vm = `mb${c}`;
  const cap = new ConsoleCapture(tb.bus, vm);
  const args = linuxCpuArgs(images, vm, CASES[c]);
  try {
    procs.push(await startService("console", ["--vm", vm, "--backend", "log:/dev/null"], url));
    procs.push(await startService("cpu", args, url));
    await until("the guest's READY", () => cap.text.includes("READY"), 180_000);
    procs.push(await startService("cpu", [...args, "--incoming", "--host", "bench"], url));
    if (c === "busy") await new Promise((r) => setTimeout(r, 2000));
    const r = await tb.bus.request({ vm, device: "ctl" }, vmContract.ops.migrate, {
      to: "bench",
      maxDowntimeMs: 30,
    }, { timeoutMs: 300_000, retries: 0 });
    for (const [who, p] of [["source", procs[1]], ["target", procs[2]]] as const) {
      for (const l of p.log) if (/^migrate: /.test(l)) log(`  ${who}: ${l}`);
    }
    return {
      downtimeMs: r.downtimeMs,
      totalMs: r.totalMs,
      bytes: Number(r.sentBytes),
      rounds: r.rounds,
      detail: `resumed at ${r.resumeMs.toFixed(1)} ms (source capture ${
        r.captureMs.toFixed(1)
      }, target load ${r.targetLoadMs.toFixed(1)}), pages by round ${
        r.roundPages.join("/")
      } + ${r.finalPages} paused`,
    };
  } finally {
    cap.close();
    for (const p of procs.reverse()) await p.stop("SIGKILL");
    await tb.close();
  }
}

/** A QMP connection over a unix socket: one command at a time. */
class Qmp {
  #buf = "";
  #dec = new TextDecoder();
  private constructor(readonly conn: Deno.UnixConn) {}
  static async open(path: string): Promise<Qmp> {
    let last: unknown;
    for (let i = 0; i < 200; i++) {
      try {
        const q = new Qmp(await Deno.connect({ transport: "unix", path }));
        await q.#reply(); // greeting
        await q.cmd("qmp_capabilities");
        return q;
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`no QMP on ${path}: ${last}`);
  }
  async #reply(): Promise<Record<string, unknown>> {
    const chunk = new Uint8Array(65536);
    for (;;) {
      let nl;
      while ((nl = this.#buf.indexOf("\n")) >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const msg = JSON.parse(line);
        if (!("event" in msg)) return msg;
      }
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("QMP closed");
      this.#buf += this.#dec.decode(chunk.subarray(0, n));
    }
  }
  async cmd(execute: string, args?: unknown): Promise<Record<string, unknown>> {
    const req = JSON.stringify(args === undefined ? { execute } : { execute, arguments: args });
    await this.conn.write(new TextEncoder().encode(req + "\n"));
    const r = await this.#reply();
    if ("error" in r) throw new Error(`QMP ${execute}: ${JSON.stringify(r.error)}`);
    return r.return as Record<string, unknown>;
  }
  close(): void {
    this.conn.close();
  }
}

async function qemuMigration(images: GuestImages, c: Case): Promise<Figures> {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-migrate-bench-" });
  const base = qemuArgs(images, {
    append: batchCmdlineParam(CASES[c]),
    disk: false,
    net: false,
  });
  const spawn = (extra: string[]) =>
    new Deno.Command("qemu-system-riscv64", {
      args: [...base, ...extra],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  const src = spawn(["-qmp", `unix:${dir}/src.qmp,server=on,wait=off`]);
  let text = "";
  const reading = (async () => {
    for await (const s of src.stdout.pipeThrough(new TextDecoderStream())) text += s;
  })();
  const tgt = spawn([
    "-qmp",
    `unix:${dir}/tgt.qmp,server=on,wait=off`,
    "-incoming",
    `unix:${dir}/mig.sock`,
  ]);
  const qmps: Qmp[] = [];
  try {
    await until("QEMU's READY", () => text.includes("READY"), 120_000);
    if (c === "busy") await new Promise((r) => setTimeout(r, 2000));
    const q = await Qmp.open(`${dir}/src.qmp`);
    qmps.push(q);
    const t = await Qmp.open(`${dir}/tgt.qmp`);
    qmps.push(t);
    await q.cmd("migrate-set-parameters", { "downtime-limit": 30, "max-bandwidth": 10e9 });
    await q.cmd("migrate", { uri: `unix:${dir}/mig.sock` });
    for (;;) {
      const s = await q.cmd("query-migrate");
      if (s.status === "completed") {
        const ram = s.ram as Record<string, number>;
        const st = await t.cmd("query-status");
        if (st.status !== "running") throw new Error(`QEMU's target is ${st.status}`);
        return {
          downtimeMs: s.downtime as number,
          totalMs: s["total-time"] as number,
          bytes: ram.transferred,
          rounds: ram["dirty-sync-count"],
        };
      }
      if (s.status === "failed") throw new Error(`QEMU migration failed: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    for (const x of qmps) x.close();
    for (const p of [src, tgt]) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.status;
    }
    await reading.catch(() => {});
    await tgt.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

const show = (f: Figures) =>
  `downtime ${f.downtimeMs.toFixed(1)} ms, total ${f.totalMs.toFixed(0)} ms, ` +
  `${(f.bytes / 1048576).toFixed(1)} MiB sent, ${f.rounds} rounds` +
  (f.detail ? `; ${f.detail}` : "");

async function measure(): Promise<void> {
  const images = await ensureGuestImages();
  const runs = Number(Deno.env.get("VMESH_BENCH_MIGRATE_RUNS") ?? 1);
  const only = Deno.env.get("VMESH_BENCH_MIGRATE_CASES")?.split(",");
  for (const c of Object.keys(CASES) as Case[]) {
    if (only && !only.includes(c)) continue;
    for (let i = 0; i < runs; i++) {
      try {
        const v = await vmeshMigration(images, c);
        const q = await qemuMigration(images, c);
        log(`${c} 256 MiB guest: vmesh ${show(v)}`);
        log(`${c} 256 MiB guest: qemu  ${show(q)}`);
        // QEMU reports whole milliseconds: 0 for a downtime under 1 ms.
        const down = q.downtimeMs > 0
          ? `${(v.downtimeMs / q.downtimeMs).toFixed(2)}x`
          : "n/a (QEMU reported 0 ms)";
        log(
          `${c}: vmesh/qemu downtime ${down}, total ${(v.totalMs / q.totalMs).toFixed(2)}x, ` +
            `bytes ${(v.bytes / q.bytes).toFixed(2)}x`,
        );
      } catch (e) {
        log(`${c} failed: ${(e as Error).stack ?? e}`);
      }
    }
  }
}

if (Deno.env.get("VMESH_BENCH_SKIP_MIGRATE") === undefined) await measure();
