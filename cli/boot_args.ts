/**
 * The command line of `./vmesh boot`, with QEMU's flag names. Problems are `BootUsageError`s
 * whose message is one line for the user.
 */

import {
  DEFAULT_ENGINE,
  type NicSpec,
  parseBiosFlag,
  parseEngineFlag,
  parseMemoryFlag,
  parseNic,
  parseSmpFlag,
  parseTimeoutSeconds,
  readFlags,
} from "../services/cpu/cli_flags.ts";
import { DEFAULT_RESTART, parseRestartFlag, type RestartPolicy } from "./restart_policy.ts";
import { parseGdbAddress } from "../services/cpu/gdb/gdb_server.ts";

/** A command-line problem (exit code 2). */
export class BootUsageError extends Error {
  override name = "BootUsageError";
}

const usageError = (message: string) => new BootUsageError(message);

/** One `--drive PATH[,ro][,format=raw|qcow2]`. */
export interface DriveSpec {
  path: string;
  readOnly: boolean;
  /** Image format; probed by the disk service when absent (as QEMU without `format=`). */
  format?: "raw" | "qcow2";
}

/** Parsed `./vmesh boot` options. */
export interface BootArgs {
  /** VM name on the bus. */
  name: string;
  /** Firmware path, null for none (kernel ELF started in M-mode), undefined: the cached OpenSBI. */
  bios?: string | null;
  kernel?: string;
  initrd?: string;
  /** Kernel command line (default "console=ttyS0"). */
  append?: string;
  /** Guest RAM in bytes. */
  memory: number;
  /** CPU execution engine: "jit" (translator) or "interp". */
  engine: "jit" | "interp";
  /** Number of harts (`--smp`). */
  smp: number;
  /** `--smp-threads`: each hart in its own thread (a Worker) in the CPU service. */
  smpThreads?: boolean;
  drives: DriveSpec[];
  /** `--nic switch=NAME[,mac=MAC]` values. */
  nics: NicSpec[];
  /** Console backends: "terminal" or "log:PATH" (default: terminal; batch mode: none). */
  consoles: string[];
  diskBackend: "raw" | "cow";
  /** Stop the VM after this many seconds. */
  timeout?: number;
  /** Show the services' own log lines and process ids. */
  verbose: boolean;
  /** Which dead device services (disks, switches, the private nats-server) are restarted. */
  restart: RestartPolicy;
  /** The CPU's deadline for one block request across its retries, in ms (its default: 60 s). */
  blockDeadlineMs?: number;
  /** `--gdb tcp:HOST:PORT`: the CPU service serves the GDB remote protocol there. */
  gdb?: string;
  /** `-S`: the harts wait for gdb. */
  waitGdb?: boolean;
  /** `--record FILE`: the CPU service records the run (services/cpu/replay/device_log.ts). */
  record?: string;
  /** `--replay FILE`: replay a recording here, without services. */
  replay?: string;
  /** Instructions between checkpoints of a recording. */
  checkpointEvery?: number;
  /** `--replay` with `--gdb`: instructions between reverse execution's snapshots. */
  snapshotEvery?: number;
  /** `--replay` with `--gdb`: most MiB of RAM pages those snapshots hold (older ones thinned). */
  snapshotMemoryMiB?: number;
  /** Batch mode: the guest command after `--`. */
  command?: string;
  help: boolean;
}

/** The `--help` text. */
export const BOOT_USAGE = `Usage: ./vmesh boot [options] [-- COMMAND...]

Boots a RISC-V Linux VM whose devices are services on a NATS bus: builds the guest
images once (cached), starts the bus (or uses $NATS_URL), the console, disk and net
services as processes, then the CPU service. The kernel log and a busybox shell
appear on the terminal; 'poweroff' in the guest stops everything (exit code 0),
Ctrl-A x quits, Ctrl-A Ctrl-A sends a literal Ctrl-A.

With -- COMMAND, runs COMMAND in the guest (batch mode), prints its output, powers
off and exits with the command's exit status.

Options (QEMU's names):
  --bios PATH|none         firmware (default: OpenSBI fw_jump.bin of Debian's opensbi;
                           none: start the kernel ELF in M-mode at its entry)
  --kernel PATH            kernel (default: the guest images' Linux Image). With --kernel
                           nothing else is built: no kernel, no initramfs, and only the
                           data disk (about a second) when there is no --drive
  --initrd PATH            initial ramdisk (default: the guest images' busybox initramfs,
                           when --kernel is not given; none when it is)
  --append ARGS            kernel command line (default "console=ttyS0")
  -m, --memory SIZE        guest RAM: MiB, or with a G/M suffix (default 256M)
  --smp N                  number of harts, 1 to 8 (default 1)
  --smp-threads            experimental: each hart in its own thread (a Worker) in the CPU
                           service; its ctl pause, snapshot and migrate are refused
  --engine jit|interp      CPU engine: translate hot guest code to WebAssembly (default),
                           or interpret only
  --drive PATH[,ro][,format=raw|qcow2]
                           a virtio-blk disk (repeatable; first is /dev/vda); the format
                           is probed when not given. Default: a copy-on-write overlay over
                           the guest images' data.ext4
  --disk-backend raw|cow   raw: --drive images are written in place (default);
                           cow: writes go to a temporary overlay, the image is untouched
  --nic switch=NAME[,mac=MAC]
                           a virtio-net port on virtual switch NAME (started if absent,
                           with DHCP and a gateway on 10.0.2.0/24 as QEMU's user network);
                           the MAC defaults to one derived from the VM name
  --console terminal|log:PATH
                           console backends (repeatable; default terminal)
  --name NAME              VM name on the bus (default vm1)
  --timeout SECONDS        stop the VM after SECONDS
  --restart no|on-failure[:N]
                           restart a disk or net service, or the private nats-server,
                           that dies (default on-failure:10: at most N restarts in any
                           60 s, then it stays down); no: a service that exits stops the VM
  --gdb tcp:HOST:PORT      the CPU service serves the GDB remote protocol there (QEMU's
                           -gdb; port 0: a free one, printed); -s is --gdb tcp::1234
  -S, --wait-gdb           do not start the harts until gdb connects and continues
  --record FILE            record the run: console input, block replies and received frames
                           with the instruction step they reached the guest at, checkpoints
                           (hash of RAM, harts, devices); instruction-count time, the
                           interpreter, a seeded virtio-rng
  --replay FILE            replay a recording with the same flags (and -- COMMAND) in this
                           process without any service; stops at the first checkpoint that
                           differs; with --gdb, gdb can also run it backwards
                           (reverse-stepi, reverse-continue)
  --snapshot-every N       with --replay and --gdb: instructions between the in-memory
                           snapshots reverse execution starts from (default 1M or RAM/16)
  --snapshot-memory MIB    with --replay and --gdb: most MiB of RAM those snapshots hold
                           (default 1024); past it older snapshots are thinned out
  --checkpoint-every N     instructions between checkpoints when recording (default 10000000)
  --block-deadline SECONDS how long the guest's disk requests wait for a disk service
                           that is away before they fail with an I/O error (default 60)
  -v, --verbose            show the services' log lines and process ids
  -h, --help               this text

Environment: NATS_URL (use this NATS server instead of a private one).`;

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** Parses the arguments of `./vmesh boot`. */
export function parseBootArgs(args: string[]): BootArgs {
  let engineGiven = false;
  const out: BootArgs = {
    name: "vm1",
    memory: 256 * 1024 * 1024,
    engine: DEFAULT_ENGINE,
    smp: 1,
    drives: [],
    nics: [],
    consoles: [],
    diskBackend: "raw",
    verbose: false,
    restart: DEFAULT_RESTART,
    help: false,
  };
  for (const { arg: a, flag, value, rest } of readFlags(args, usageError)) {
    if (a === "--") {
      const command = rest();
      if (command.length === 0) throw new BootUsageError("-- needs a COMMAND to run in the guest");
      out.command = command.join(" ");
      break;
    }
    switch (flag) {
      case "-h":
      case "--help":
        out.help = true;
        break;
      case "-v":
      case "--verbose":
        out.verbose = true;
        break;
      case "--bios":
        out.bios = parseBiosFlag(value());
        break;
      case "--kernel":
        out.kernel = value();
        break;
      case "--initrd":
        out.initrd = value();
        break;
      case "--append":
        out.append = value();
        break;
      case "-m":
      case "--memory":
        out.memory = parseMemoryFlag(value(), usageError);
        break;
      case "--engine":
        out.engine = parseEngineFlag(value(), usageError);
        engineGiven = true;
        break;
      case "--smp":
        out.smp = parseSmpFlag(value(), usageError);
        break;
      case "--smp-threads":
        out.smpThreads = true;
        break;
      case "--drive": {
        const v = value();
        const parts = v.split(",");
        const path = parts[0];
        if (!path) throw new BootUsageError(`--drive needs a PATH, got '${v}'`);
        const opts = parts.slice(1);
        const bad = opts.find((o) => o !== "ro" && o !== "format=raw" && o !== "format=qcow2");
        if (bad !== undefined) {
          throw new BootUsageError(
            `--drive ${v}: unknown option '${bad}' (the options are ',ro' and ',format=raw|qcow2')`,
          );
        }
        const format = opts.find((o) => o.startsWith("format="))?.slice(7) as DriveSpec["format"];
        out.drives.push({ path, readOnly: opts.includes("ro"), ...(format ? { format } : {}) });
        break;
      }
      case "--nic": {
        const v = value();
        try {
          out.nics.push(parseNic(v));
        } catch (e) {
          throw new BootUsageError(`--nic ${v}: ${(e as Error).message}`);
        }
        break;
      }
      case "--console": {
        const v = value();
        if (v !== "terminal" && !(v.startsWith("log:") && v.length > 4)) {
          throw new BootUsageError(`--console ${v}: want terminal or log:PATH`);
        }
        out.consoles.push(v);
        break;
      }
      case "--disk-backend": {
        const v = value();
        if (v !== "raw" && v !== "cow") {
          throw new BootUsageError(`--disk-backend ${v}: want raw or cow`);
        }
        out.diskBackend = v;
        break;
      }
      case "--name": {
        const v = value();
        if (!TOKEN.test(v)) {
          throw new BootUsageError(`--name ${v}: use letters, digits, - and _ only`);
        }
        out.name = v;
        break;
      }
      case "--timeout":
        out.timeout = parseTimeoutSeconds(value(), usageError);
        break;
      case "--gdb":
      case "-s": {
        const v = flag === "-s" ? "tcp::1234" : value();
        const addr = parseGdbAddress(v);
        if (typeof addr === "string") throw new BootUsageError(addr);
        out.gdb = v;
        break;
      }
      case "-S":
      case "--wait-gdb":
        out.waitGdb = true;
        break;
      case "--record":
        out.record = value();
        break;
      case "--replay":
        out.replay = value();
        break;
      case "--checkpoint-every": {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) <= 0) {
          throw new BootUsageError(`--checkpoint-every needs a positive integer, got '${v}'`);
        }
        out.checkpointEvery = Number(v);
        break;
      }
      case "--snapshot-every":
      case "--snapshot-memory": {
        const v = value();
        if (!/^\d+$/.test(v) || Number(v) <= 0) {
          throw new BootUsageError(`${flag} needs a positive integer, got '${v}'`);
        }
        if (flag === "--snapshot-every") out.snapshotEvery = Number(v);
        else out.snapshotMemoryMiB = Number(v);
        break;
      }
      case "--restart":
        try {
          out.restart = parseRestartFlag(value());
        } catch (e) {
          throw new BootUsageError((e as Error).message);
        }
        break;
      case "--block-deadline": {
        const v = value();
        const s = Number(v);
        if (!(s > 0 && s <= 86400)) {
          throw new BootUsageError(`--block-deadline ${v}: want seconds, more than 0`);
        }
        out.blockDeadlineMs = Math.round(s * 1000);
        break;
      }
      default:
        throw new BootUsageError(
          a.startsWith("-") ? `unknown option ${a}` : `unexpected argument ${a} (a guest ` +
            `command goes after --)`,
        );
    }
  }
  if (out.record !== undefined && out.replay !== undefined) {
    throw new BootUsageError("--record and --replay exclude each other");
  }
  if (out.record !== undefined || out.replay !== undefined) {
    // The translator compiles on V8's threads: when its code starts to run depends on the host.
    if (engineGiven && out.engine === "jit") {
      throw new BootUsageError(
        "--record/--replay run the interpreter (when translated code starts to run depends " +
          "on the host): drop --engine jit",
      );
    }
    out.engine = "interp";
  }
  if (
    (out.snapshotEvery !== undefined || out.snapshotMemoryMiB !== undefined) &&
    (out.replay === undefined || !out.gdb)
  ) {
    throw new BootUsageError(
      "--snapshot-every/--snapshot-memory are for reverse execution: give --replay FILE and --gdb",
    );
  }
  if (out.waitGdb && !out.gdb) {
    throw new BootUsageError("-S/--wait-gdb needs --gdb tcp:HOST:PORT (or -s) to wait for");
  }
  if (out.smpThreads && (out.gdb || out.record !== undefined || out.replay !== undefined)) {
    throw new BootUsageError(
      "--smp-threads cannot be combined with --gdb, --record or --replay: drop --smp-threads",
    );
  }
  return out;
}

/** Throws a BootUsageError unless every file the options name exists. */
export function checkBootFiles(o: BootArgs): void {
  const check = (path: string | null | undefined, what: string) => {
    if (path == null) return;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path);
    } catch {
      throw new BootUsageError(`${what} ${path}: no such file`);
    }
    if (!info.isFile) throw new BootUsageError(`${what} ${path}: not a regular file`);
  };
  check(o.bios, "--bios");
  check(o.kernel, "--kernel");
  check(o.initrd, "--initrd");
  for (const d of o.drives) check(d.path, "--drive");
  for (const c of o.consoles) {
    if (c.startsWith("log:") && c.slice(4).endsWith("/")) {
      throw new BootUsageError(`--console ${c}: not a file path`);
    }
  }
}
