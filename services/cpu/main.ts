/**
 * The CPU service's entry point (for now: one machine in this process, from command-line
 * arguments; `./vmesh run` is this). Runs a bare-metal RISC-V ELF (or, with --bios, a kernel)
 * on the `virt` machine. UART and HTIF console output go to stdout; the exit code is the
 * guest's (HTIF exit code, SiFive test finisher status).
 */
import { EXIT_STOPPED, Machine, MachineError } from "./machine/machine.ts";
import {
  DEFAULT_ENGINE,
  parseBiosFlag,
  parseEngineFlag,
  parseMemoryFlag,
  parseSmpFlag,
  parseTimeoutSeconds,
  readFlags,
} from "./cli_flags.ts";
import type { EngineKind } from "./hart/mod.ts";
import {
  type DebugHart,
  type GdbAddress,
  GdbServer,
  GdbStub,
  HeldClock,
  parseGdbAddress,
} from "./gdb/mod.ts";
import { WallClock } from "./machine/clock.ts";
import type { RunRecorder, RunReplayer } from "./replay/run_log.ts";
import type { TimeTravel } from "./replay/time_travel.ts";

const USAGE = `usage: vmesh run [options] PROGRAM

Runs PROGRAM on a QEMU-virt-compatible RISC-V machine (RV64GC, 1 to 8 harts).
Without --bios, PROGRAM is a bare-metal ELF started in M-mode at its entry (on every
hart) with a0 = hart id and a1 = device tree address; programs using the HTIF
tohost/fromhost convention end the run with their exit code. With --bios, the
firmware is loaded at 0x80000000 and PROGRAM is the next stage (ELF, or a raw Image
at 0x80200000).

options:
  -m, --memory SIZE        guest RAM: MiB, or with a K/M/G suffix (default 128M)
  --smp N                  number of harts, 1 to 8 (default 1)
  --smp-threads            experimental: run each hart in its own thread (a Worker)
                           instead of all in turn on one; no --gdb, --record/--replay,
                           --max-instructions
  --bios PATH|none         firmware, e.g. OpenSBI fw_jump.bin (default none)
  --initrd PATH            initial ramdisk
  --append ARGS            kernel command line
  --max-instructions N     stop after N instructions (exit code ${EXIT_STOPPED})
  --timeout SECONDS        stop after SECONDS of wall-clock time (exit code ${EXIT_STOPPED})
  --no-reboot              exit instead of rebooting when the guest resets
  --engine jit|interp      translate hot code to WebAssembly, or interpret only
                           (default ${DEFAULT_ENGINE})
  --gdb tcp:HOST:PORT      serve the GDB remote protocol there (QEMU's -gdb); tcp::PORT
                           listens on all interfaces
  -s                       shorthand for --gdb tcp::1234
  -S, --wait-gdb           do not start the hart until gdb connects and continues
  --record FILE            record the run for --replay: console input with the step it
                           arrived at, and checkpoints (a hash of RAM and every hart and
                           device); runs on instruction-count time with the interpreter
  --replay FILE            replay a recording with the same PROGRAM and flags: its input,
                           not the terminal's; stops at the first checkpoint that differs;
                           with --gdb, gdb can also run it backwards (reverse-stepi,
                           reverse-continue)
  --snapshot-every N       with --replay and --gdb: instructions between the in-memory
                           snapshots reverse execution starts from (default 1M, or RAM/16)
  --checkpoint-every N     instructions between checkpoints when recording (default
                           10000000; a replay takes its checkpoints from the log)
  -h, --help               this text
`;

/** Parsed command line. */
interface RunArgs {
  program: string;
  ramSize: number;
  harts: number;
  bios: string | null;
  initrd?: string;
  append?: string;
  maxInstructions?: number;
  timeout?: number;
  noReboot?: boolean;
  engine: EngineKind;
  gdb?: GdbAddress;
  waitGdb?: boolean;
  record?: string;
  replay?: string;
  checkpointEvery: number;
  snapshotEvery?: number;
  threads?: boolean;
}

/** A command-line problem, reported as one line. */
class UsageError extends Error {}
const usageError = (message: string) => new UsageError(message);

function parseArgs(args: string[]): RunArgs | "help" {
  const out: Partial<RunArgs> = {
    ramSize: 128 * 1024 * 1024,
    harts: 1,
    bios: null,
    engine: DEFAULT_ENGINE,
    checkpointEvery: 10_000_000,
  };
  let engineGiven = false;
  for (const { arg: a, flag, value } of readFlags(args, usageError)) {
    const positiveInt = (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) <= 0) {
        throw new UsageError(`${flag} needs a positive integer, got '${v}'`);
      }
      return Number(v);
    };
    switch (flag) {
      case "-h":
      case "--help":
        return "help";
      case "-m":
      case "--memory":
        out.ramSize = parseMemoryFlag(value(), usageError);
        break;
      case "--smp":
        out.harts = parseSmpFlag(value(), usageError);
        break;
      case "--smp-threads":
        out.threads = true;
        break;
      case "--bios":
        out.bios = parseBiosFlag(value());
        break;
      case "--no-reboot":
        out.noReboot = true;
        break;
      case "--engine":
        out.engine = parseEngineFlag(value(), usageError);
        engineGiven = true;
        break;
      case "--record":
        out.record = value();
        break;
      case "--replay":
        out.replay = value();
        break;
      case "--checkpoint-every":
        out.checkpointEvery = positiveInt(value());
        break;
      case "--snapshot-every":
        out.snapshotEvery = positiveInt(value());
        break;
      case "--initrd":
        out.initrd = value();
        break;
      case "--append":
        out.append = value();
        break;
      case "--max-instructions":
        out.maxInstructions = positiveInt(value());
        break;
      case "--timeout":
        out.timeout = parseTimeoutSeconds(value(), usageError);
        break;
      case "--gdb":
      case "-s": {
        const addr = parseGdbAddress(flag === "-s" ? "tcp::1234" : value());
        if (typeof addr === "string") throw new UsageError(addr);
        out.gdb = addr;
        break;
      }
      case "-S":
      case "--wait-gdb":
        out.waitGdb = true;
        break;
      default:
        if (a.startsWith("-") && a !== "-") throw new UsageError(`unknown option ${a}`);
        if (out.program !== undefined) throw new UsageError(`unexpected argument ${a}`);
        out.program = a;
    }
  }
  if (out.program === undefined) throw new UsageError("no PROGRAM given (see vmesh run --help)");
  if (out.record !== undefined || out.replay !== undefined) {
    if (out.record !== undefined && out.replay !== undefined) {
      throw new UsageError("--record and --replay exclude each other");
    }
    if (out.gdb && out.record !== undefined) {
      throw new UsageError(
        "--record cannot be combined with --gdb (record, then --replay with --gdb)",
      );
    }
    if (engineGiven && out.engine === "jit") {
      throw new UsageError("--record/--replay run the interpreter (--engine interp)");
    }
    out.engine = "interp";
  }
  if (out.threads) {
    if (out.gdb || out.record !== undefined || out.replay !== undefined) {
      throw new UsageError("--smp-threads cannot be combined with --gdb, --record or --replay");
    }
    if (out.maxInstructions !== undefined) {
      throw new UsageError("--smp-threads cannot be combined with --max-instructions");
    }
  }
  if (out.snapshotEvery !== undefined && (out.replay === undefined || !out.gdb)) {
    throw new UsageError("--snapshot-every is for reverse execution: give --replay FILE and --gdb");
  }
  if (out.waitGdb && !out.gdb) {
    throw new UsageError("-S/--wait-gdb needs --gdb tcp:HOST:PORT (or -s) to wait for");
  }
  return out as RunArgs;
}

function checkFile(path: string, what: string): void {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    throw new UsageError(`${what} ${path}: no such file`);
  }
  if (!info.isFile) throw new UsageError(`${what} ${path}: not a regular file`);
}

/** Runs a machine as the command line says; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  // With --vm this is the CPU service on the bus (vm_main.ts); otherwise a local run.
  if (args.some((a) => a === "--vm" || a.startsWith("--vm="))) {
    return await (await import("./vm_main.ts")).main(args);
  }
  let parsed: RunArgs | "help";
  try {
    parsed = parseArgs(args);
    if (parsed !== "help") {
      checkFile(parsed.program, "program");
      if (parsed.bios) checkFile(parsed.bios, "firmware");
      if (parsed.initrd) checkFile(parsed.initrd, "initrd");
    }
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`vmesh run: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (parsed === "help") {
    console.log(USAGE);
    return 0;
  }
  const opts = parsed;

  let machine: Machine;
  let gdbStub: GdbStub | undefined;
  // Under gdb, guest time stands still while the hart is held (as QEMU's virtual clock).
  const clock = opts.gdb ? new HeldClock(new WallClock()) : undefined;
  let journal: RunRecorder | RunReplayer | TimeTravel | undefined;
  // Each image is read once: hashed for the log and loaded from the same bytes.
  let images: {
    program: Uint8Array | string;
    bios: Uint8Array | string | null;
    initrd?: Uint8Array | string;
  } = {
    program: opts.program,
    bios: opts.bios,
    initrd: opts.initrd,
  };
  // Record/replay modules (and node:zlib with them) load only for a journaled run.
  const rr = opts.record !== undefined || opts.replay !== undefined
    ? await import("./replay/run_log.ts")
    : undefined;
  const tt = opts.replay !== undefined && opts.gdb
    ? await import("./replay/time_travel.ts")
    : undefined;
  const isTravel = (j: unknown): j is TimeTravel => tt !== undefined && j instanceof tt.TimeTravel;
  try {
    if (rr) images = await readImages(opts);
    journal = rr ? await openJournal(rr, opts, images as Images) : undefined;
    if (tt && rr && journal instanceof rr.RunReplayer) {
      journal = new tt.TimeTravel(journal, {
        harts: opts.harts,
        ramSize: opts.ramSize,
        snapshotEvery: opts.snapshotEvery,
      });
    }
  } catch (e) {
    if ((rr && e instanceof rr.ReplayError) || e instanceof UsageError) {
      console.error(`vmesh run: ${e.message}`);
      return 1;
    }
    throw e;
  }
  try {
    machine = new Machine({
      ramSize: opts.ramSize,
      harts: opts.harts,
      engine: opts.engine,
      bios: images.bios,
      kernel: images.program,
      initrd: images.initrd,
      append: opts.append,
      // A replay stops where the recording's limit stopped it, unless told to stop sooner.
      maxInstructions: opts.maxInstructions ?? journal?.header.maxInstructions,
      noReboot: opts.noReboot,
      onConsoleOutput: isTravel(journal)
        ? (bytes) => (journal as TimeTravel).output(bytes, writeAll)
        : (bytes) => writeAll(bytes),
      debug: opts.gdb ? { runBatch: (n, hart) => gdbStub!.runBatch(n, hart) } : undefined,
      clock: journal ? "instructions" : clock,
      journal,
      rtcEpochNs: journal?.header.rtcEpochNs,
      threads: opts.threads,
    });
  } catch (e) {
    if (e instanceof MachineError) {
      console.error(`vmesh run: ${e.message}`);
      return 1;
    }
    throw e;
  }

  let gdbServer: GdbServer | undefined;
  if (opts.gdb) {
    const m = machine;
    gdbStub = new GdbStub({
      harts: machine.harts as unknown as DebugHart[],
      mem: machine.mem,
      kill: () => m.stop(0),
      hold: () => clock?.hold(),
      release: () => clock?.release(),
    }, {
      waitForClient: opts.waitGdb,
      reverse: isTravel(journal) ? journal : undefined,
    });
    try {
      gdbServer = new GdbServer(gdbStub, opts.gdb);
    } catch (e) {
      console.error(
        `vmesh run: cannot listen for gdb on ${opts.gdb.hostname}:${opts.gdb.port}: ${
          e instanceof Error ? e.message : e
        } (choose another port, or tcp:HOST:0 for a free one)`,
      );
      return 1;
    }
    const where = `tcp:${gdbServer.addr.hostname}:${gdbServer.addr.port}`;
    console.error(`vmesh run: gdb stub on ${where}${opts.waitGdb ? ", waiting for gdb" : ""}`);
  }
  // A stop from outside also releases a hart held by gdb (which learns the exit code).
  const stopMachine = (code: number) => {
    machine.stop(code);
    gdbStub?.targetExited(code);
  };
  const stdinTty = Deno.stdin.isTerminal();
  const onSigint = () => stopMachine(130);
  if (!stdinTty) Deno.addSignalListener("SIGINT", onSigint);
  const timer = opts.timeout
    ? setTimeout(() => stopMachine(EXIT_STOPPED), opts.timeout * 1000)
    : undefined;
  const input = forwardInput(machine, stdinTty);
  const t0 = performance.now();
  let code: number;
  try {
    code = await machine.run();
  } finally {
    gdbStub?.targetExited(code! ?? EXIT_STOPPED);
    await gdbServer?.close();
    clearTimeout(timer);
    if (!stdinTty) Deno.removeSignalListener("SIGINT", onSigint);
    input.close();
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(2);
  const replayer = isTravel(journal) ? journal.replayer : journal;
  if (rr && replayer instanceof rr.RunReplayer) {
    if (replayer.divergence !== undefined) {
      console.error(`vmesh run: replay of ${opts.replay} ${replayer.divergence}`);
      return 1;
    }
    const travels = isTravel(journal)
      ? `, ${journal.travels} travels back, ${journal.snapshots.length} snapshots`
      : "";
    console.error(
      `vmesh run: replay of ${opts.replay} matched ${replayer.checkpoints} checkpoints ` +
        `(${machine.instret} instructions, ${secs} s${travels})` +
        (replayer.stoppedEarly ? "; stopped before the recording's end" : ""),
    );
  } else if (rr && journal instanceof rr.RunRecorder) {
    console.error(
      `vmesh run: recorded ${opts.record}: ${journal.checkpoints} checkpoints, ` +
        `${machine.instret} instructions`,
    );
  }
  if (machine.threadStats && Deno.env.get("VMESH_SMP_STATS")) {
    for (const t of machine.threadStats) {
      console.error(
        `vmesh run: hart ${t.hartId} thread: ${t.instret} instructions, ${t.mmio} MMIO ` +
          `through the mailbox (${t.posted} posted stores), ${t.sleeps} WFI sleeps, ` +
          `${t.fenceIDrops} pages dropped at FENCE.I` +
          (t.jit ? ` (translator: ${t.jit})` : ""),
      );
    }
  }
  if (machine.stopCause === "limit") {
    console.error(`vmesh run: stopped after ${machine.instret} instructions (limit)`);
  } else if (machine.stopCause === "stopped") {
    console.error(`vmesh run: stopped after ${secs} s, ${machine.instret} instructions`);
  } else if (machine.stopCause === "reset") {
    console.error("vmesh run: guest requested a reset; stopping");
  }
  return code;
}

/** The program and images as bytes (a journaled run hashes the very bytes it loads). */
interface Images {
  program: Uint8Array;
  bios: Uint8Array | null;
  initrd?: Uint8Array;
}

async function readImages(o: RunArgs): Promise<Images> {
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readFile(path);
    } catch (e) {
      throw new UsageError(`${what} ${path}: ${e instanceof Error ? e.message : e}`);
    }
  };
  return {
    program: await read(o.program, "program"),
    bios: o.bios == null ? null : await read(o.bios, "firmware"),
    initrd: o.initrd === undefined ? undefined : await read(o.initrd, "initrd"),
  };
}

/** The recorder or replayer `--record`/`--replay` ask for (images hashed, flags compared). */
async function openJournal(
  rr: typeof import("./replay/run_log.ts"),
  o: RunArgs,
  images: Images,
): Promise<RunRecorder | RunReplayer> {
  const parts = [images.program, images.bios, images.initrd].filter((p) => p != null);
  const flags = {
    vmesh: "run-log" as const,
    version: 1 as const,
    images: await rr.imagesDigest(parts),
    ramSize: o.ramSize,
    harts: o.harts,
    append: o.append,
    checkpointEvery: o.checkpointEvery,
  };
  if (o.replay !== undefined) return await rr.RunReplayer.open(o.replay, flags);
  try {
    return await rr.RunRecorder.create(o.record!, {
      ...flags,
      rtcEpochNs: Date.now() * 1e6,
      maxInstructions: o.maxInstructions,
    });
  } catch (e) {
    throw new UsageError(`cannot write ${o.record}: ${e instanceof Error ? e.message : e}`);
  }
}

function writeAll(bytes: Uint8Array): void {
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

/**
 * Forwards stdin to the UART. A terminal is put in raw mode, where Ctrl-A x quits (as in QEMU)
 * and Ctrl-A Ctrl-A sends Ctrl-A; piped input is passed through as it is.
 */
function forwardInput(machine: Machine, tty: boolean): { close(): void } {
  if (tty) Deno.stdin.setRaw(true);
  let closed = false;
  let escape = false;
  (async () => {
    const buf = new Uint8Array(256);
    while (!closed) {
      let n: number | null;
      try {
        n = await Deno.stdin.read(buf);
      } catch {
        break;
      }
      if (n === null || closed) break;
      const out: number[] = [];
      for (const b of buf.subarray(0, n)) {
        if (!tty) out.push(b);
        else if (escape) {
          escape = false;
          if (b === 0x78 /* x */) machine.stop(0);
          else if (b === 0x01) out.push(b);
        } else if (b === 0x01) escape = true;
        else out.push(b);
      }
      machine.sendInput(new Uint8Array(out));
    }
  })();
  return {
    close() {
      closed = true;
      if (tty) Deno.stdin.setRaw(false);
    },
  };
}

if (import.meta.main) Deno.exit(await main(Deno.args));
