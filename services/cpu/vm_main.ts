/**
 * The CPU service as a bus service (`services/cpu/main.ts --vm NAME ...`): one machine whose
 * disks, network ports and console are other services on the bus (see vm_service.ts).
 *
 *   deno run -A services/cpu/main.ts --vm vm1 --bios fw_jump.bin --kernel Image \
 *     --initrd initramfs.cpio.gz --append "console=ttyS0" --disk disk0 --nic switch=sw0
 *
 * NATS_URL selects the server (unset: a private embedded nats-server). Prints
 * `vmesh-cpu ready: ...` on stderr once the control contract is served, then runs the guest
 * (with --wait-start, at the first `ctl.start` request);
 * exits with the guest's code (0 after poweroff or a `ctl.stop` request, 130/143 after
 * SIGINT/SIGTERM, 1 when a device service does not answer or an image is bad).
 * @module
 */

import { parseArgs } from "node:util";
import {
  BusError,
  busHealth,
  checkToken,
  connect,
  parseHttpListen,
  startControlHttp,
  watchLifeline,
} from "@vmesh/bus";
import { vmControlApi, vmControlOverBus } from "./control_api.ts";
import { MachineError } from "./machine/machine.ts";
import { parseRamSize } from "./memory_size.ts";
import {
  DEFAULT_ENGINE,
  parseEngineFlag,
  parseNewMac,
  parseNic,
  parseSmpFlag,
} from "./cli_flags.ts";
import {
  CPU_SERVICE_NAME,
  defaultMac,
  pcBits,
  type VmNic,
  VmService,
  type VmServiceOptions,
} from "./vm_service.ts";
import { conflictingRestoreFlag, restoreOptions, SnapshotError } from "./snapshot/mod.ts";
import type { EngineKind } from "./hart/mod.ts";
import { IncomingClock } from "./migration/mod.ts";
import denoJson from "./deno.json" with { type: "json" };
import { MachineDebugger } from "./gdb/machine_debugger.ts";
import { type GdbAddress, parseGdbAddress } from "./gdb/gdb_server.ts";
import { imagesDigest, RunRecorder } from "./replay/run_log.ts";
import { DeviceRecorder } from "./replay/device_log.ts";

const USAGE = `usage: cpu/main.ts --vm NAME [options] [KERNEL]

Runs one RISC-V virt machine as the CPU service of VM NAME on the bus.
  --vm NAME                VM name (subject token)
  -m, --memory SIZE        guest RAM: MiB or with K/M/G suffix (default 256M)
  --smp N                  number of harts, 1 to 8 (default 1)
  --smp-threads            experimental: each hart in its own thread (a Worker); ctl pause,
                           snapshot and migrate are refused then
  --bios PATH|none         firmware loaded at 0x80000000 (default none)
  --kernel PATH            kernel (ELF, or raw Image with --bios)
  --initrd PATH            initial ramdisk
  --append ARGS            kernel command line
  --disk DEVICE            a virtio-blk backed by disk service DEVICE (repeatable)
  --nic switch=NAME[,mac=MAC]  a virtio-net port on switch NAME (repeatable)
  --no-rng                 no virtio-rng
  --engine jit|interp      translate hot code to WebAssembly, or interpret only (default jit)
  --block-deadline MS      give up a block request after MS (default 60000)
  --http [HOST:]PORT       control endpoint: /healthz, /metrics, /vm REST API (0: a free port)
  --restore SNAP           start from snapshot SNAP of the memory service (vmesh.memory.*):
                           RAM, harts, devices, images, disks and nics come from it
  --new-mac MAC            with --restore: the next NIC (in slot order; repeatable) changes
                           to MAC when the VM runs: its switch port joins with it and the
                           guest is told by a link bounce (a clone's own address)
  --incoming               wait for a live migration of VM NAME (QEMU's -incoming): give the
                           source's machine flags; serves vmesh.NAME.incoming.* until the
                           source (vmesh migrate NAME --to HOST) hands the VM over
  --host NAME              this host's name for --incoming (default: the hostname)
  --gdb tcp:HOST:PORT      serve the GDB remote protocol there (QEMU's -gdb; port 0: a free
                           one, printed as "gdb stub on tcp:HOST:PORT")
  -S, --wait-gdb           do not start the harts until gdb connects and continues
  --wait-start             build the machine and serve the control contract, but run the
                           guest only at a ctl.start request (QEMU's -S, then "cont"): a
                           launcher starts this service beside its devices, then starts the VM
  --record FILE            record the run for \`vmesh boot --replay\`: console input, block
                           replies and received frames with the step they were applied at,
                           and checkpoints; runs on instruction-count time with the
                           interpreter, the virtio-rng seeded from the log
  --checkpoint-every N     instructions between checkpoints when recording (default 10000000)
  -h, --help               this text`;

function fail(message: string, code = 2): never {
  console.error(`${CPU_SERVICE_NAME}: ${message}`);
  Deno.exit(code);
}

/** Runs the VM service; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  watchLifeline({ name: CPU_SERVICE_NAME });
  let flags;
  let positionals: string[];
  try {
    ({ values: flags, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        vm: { type: "string" },
        memory: { type: "string", short: "m", default: "256M" },
        smp: { type: "string", default: "1" },
        "smp-threads": { type: "boolean", default: false },
        bios: { type: "string" },
        kernel: { type: "string" },
        initrd: { type: "string" },
        append: { type: "string" },
        disk: { type: "string", multiple: true },
        nic: { type: "string", multiple: true },
        "no-rng": { type: "boolean", default: false },
        engine: { type: "string", default: DEFAULT_ENGINE },
        "block-deadline": { type: "string" },
        http: { type: "string" },
        restore: { type: "string" },
        "new-mac": { type: "string", multiple: true },
        incoming: { type: "boolean", default: false },
        host: { type: "string" },
        gdb: { type: "string" },
        record: { type: "string" },
        "checkpoint-every": { type: "string", default: "10000000" },
        "wait-gdb": { type: "boolean", short: "S", default: false },
        "wait-start": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    fail(`${(e as Error).message}\n${USAGE}`);
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  let ramSize: number;
  let harts: number;
  let engine: EngineKind;
  let nics: VmNic[];
  let newMacs: string[];
  const vmName = flags.vm ?? "";
  try {
    checkToken("vm", vmName);
    for (const d of flags.disk ?? []) checkToken("disk device", d);
    ramSize = parseRamSize(flags.memory);
    harts = parseSmpFlag(flags.smp, (m) => new TypeError(m));
    engine = parseEngineFlag(flags.engine, (m) => new TypeError(m));
    nics = (flags.nic ?? []).map(parseNic);
    newMacs = (flags["new-mac"] ?? []).map(parseNewMac);
    parseHttpListen(flags.http);
  } catch (e) {
    fail((e as Error).message);
  }
  if (positionals.length > 1) fail(`unexpected argument ${positionals[1]}`);
  const kernel = flags.kernel ?? positionals[0];
  const deadline = flags["block-deadline"] ? Number(flags["block-deadline"]) : undefined;
  if (deadline !== undefined && !(deadline > 0)) fail("--block-deadline must be positive");

  let gdbAddr: GdbAddress | undefined;
  if (flags.gdb !== undefined) {
    const a = parseGdbAddress(flags.gdb);
    if (typeof a === "string") fail(a);
    if (flags.incoming) fail("--gdb and --incoming exclude each other (attach gdb after it)");
    gdbAddr = a;
  } else if (flags["wait-gdb"]) fail("-S/--wait-gdb needs --gdb tcp:HOST:PORT to wait for");
  // Under gdb, guest time stands still while the harts are held (as QEMU's virtual clock).
  const dbg = gdbAddr ? new MachineDebugger({ waitForClient: flags["wait-gdb"] }) : undefined;
  const restoreFrom = flags.restore;
  if (newMacs.length && restoreFrom === undefined) {
    fail("--new-mac changes a restored NIC's MAC: it needs --restore SNAP (else use --nic mac=)");
  }
  let recorder: DeviceRecorder | undefined;
  const rtcEpochNs = Date.now() * 1e6;
  let recorded: { bios: Uint8Array | null; kernel?: Uint8Array; initrd?: Uint8Array } | undefined;
  if (flags.record !== undefined) {
    if (restoreFrom !== undefined || flags.incoming || gdbAddr) {
      fail("--record starts a fresh machine: drop --restore, --incoming and --gdb");
    }
    const every = Number(flags["checkpoint-every"]);
    if (!Number.isInteger(every) || every <= 0) fail("--checkpoint-every needs a positive integer");
    // Each image is read once: hashed for the log and loaded from the same bytes.
    const read = (path: string | undefined, what: string) => {
      if (path === undefined) return undefined;
      try {
        return Deno.readFileSync(path);
      } catch (e) {
        fail(`cannot read ${what} ${path}: ${(e as Error).message}`, 1);
      }
    };
    recorded = {
      bios: flags.bios === undefined || flags.bios === "none"
        ? null
        : read(flags.bios, "firmware")!,
      kernel: read(kernel, "kernel"),
      initrd: read(flags.initrd, "initrd"),
    };
    const parts = [recorded.kernel, recorded.bios, recorded.initrd].filter((p) => p != null);
    try {
      recorder = new DeviceRecorder(
        await RunRecorder.create(flags.record, {
          vmesh: "run-log",
          version: 1,
          images: await imagesDigest(parts),
          ramSize,
          harts,
          append: flags.append,
          rtcEpochNs,
          checkpointEvery: every,
          devices: {
            disks: flags.disk ?? [],
            nics: nics.map((n, i) => n.mac ?? defaultMac(vmName, i)),
            rng: !flags["no-rng"],
            seed: crypto.getRandomValues(new Uint32Array(1))[0],
          },
        }),
      );
    } catch (e) {
      fail(`cannot write ${flags.record}: ${(e as Error).message}`, 1);
    }
  }
  const host = flags.host ?? Deno.hostname();
  if (flags.incoming) {
    if (restoreFrom !== undefined) fail("--incoming and --restore exclude each other");
    try {
      checkToken("host", host);
    } catch (e) {
      fail((e as Error).message);
    }
  }
  if (
    flags["smp-threads"] &&
    (flags.gdb !== undefined || flags.record !== undefined || flags.incoming ||
      flags.restore !== undefined)
  ) {
    fail("--smp-threads cannot be combined with --gdb, --record, --incoming or --restore");
  }
  if (flags.incoming && flags["wait-start"]) {
    fail("--wait-start and --incoming exclude each other (a migration starts the VM)");
  }
  const incomingClock = flags.incoming ? new IncomingClock() : undefined;
  if (restoreFrom !== undefined) {
    const clash = conflictingRestoreFlag(args) ?? (positionals.length ? positionals[0] : undefined);
    if (clash) fail(`--restore takes the machine from the snapshot: drop ${clash}`);
  }
  const bus = await connect({ name: `${CPU_SERVICE_NAME}.${vmName}` });
  let vm: VmService;
  try {
    const restored: VmServiceOptions | undefined = restoreFrom === undefined
      ? undefined
      : await restoreOptions(bus, restoreFrom, vmName, {
        engine: args.includes("--engine") ? engine : undefined,
        block: { deadlineMs: deadline },
        version: denoJson.version,
        newMacs,
      });
    vm = await VmService.create(
      bus,
      restored ? { ...restored, machine: { ...restored.machine, debug: dbg?.hook } } : {
        vm: vmName,
        machine: {
          ramSize,
          harts,
          engine,
          bios: flags.bios === undefined || flags.bios === "none" ? null : flags.bios,
          kernel,
          initrd: flags.initrd,
          append: flags.append,
          ...(flags["smp-threads"] ? { threads: true } : {}),
          ...(incomingClock ? { clock: incomingClock } : {}),
          ...(dbg ? { clock: dbg.clock, debug: dbg.hook } : {}),
          // Recorded: deterministic time, the interpreter, the very bytes hashed.
          ...(recorder && recorded
            ? {
              ...recorded,
              clock: "instructions" as const,
              engine: "interp" as const,
              journal: recorder,
              rtcEpochNs,
            }
            : {}),
        },
        io: recorder,
        disks: (flags.disk ?? []).map((device) => ({ device })),
        nics,
        rng: !flags["no-rng"],
        block: { deadlineMs: deadline },
        version: denoJson.version,
      },
    );
  } catch (e) {
    await bus.close();
    if (e instanceof SnapshotError) fail(`cannot restore ${restoreFrom}: ${e.message}`, 1);
    if (e instanceof MachineError || e instanceof BusError) fail(e.message, 1);
    throw e;
  }
  let svc;
  if (incomingClock) {
    const inc = await vm.incoming(host, incomingClock);
    console.error(`${CPU_SERVICE_NAME} incoming ready: ${inc.svc.prefix} host=${host}`);
    try {
      await inc.done;
    } catch (e) {
      await inc.svc.stop();
      await vm.close();
      await bus.close();
      fail((e as Error).message, 1);
    }
    await inc.svc.stop();
    svc = vm.controlService!;
  } else svc = await vm.serve();
  if (dbg && gdbAddr) {
    try {
      const at = dbg.attach(vm.machine, gdbAddr);
      console.error(
        `${CPU_SERVICE_NAME}: gdb stub on tcp:${at.hostname}:${at.port}` +
          (flags["wait-gdb"] ? ", waiting for gdb" : ""),
      );
    } catch (e) {
      await vm.close();
      await bus.close();
      fail(
        `cannot listen for gdb on ${gdbAddr.hostname}:${gdbAddr.port}: ${(e as Error).message} ` +
          "(choose another port, or tcp:HOST:0 for a free one)",
        1,
      );
    }
  }
  let signalled: () => void = () => {};
  const stopSignal = new Promise<void>((r) => signalled = r);
  const stopOn = (sig: Deno.Signal, code: number) => {
    const h = () => {
      vm.machine.stop(code);
      dbg?.targetExited(code);
      signalled();
    };
    Deno.addSignalListener(sig, h);
    return () => Deno.removeSignalListener(sig, h);
  };
  const unhook = [stopOn("SIGINT", 130), stopOn("SIGTERM", 143)];
  let http;
  try {
    http = startControlHttp(flags.http, {
      service: CPU_SERVICE_NAME,
      health: busHealth(bus.nc, svc.prefix),
      routes: [{
        path: "/vm",
        app: vmControlApi(vmName, vmControlOverBus(bus, vmName, () => vm.status())),
      }],
    });
  } catch (e) {
    await vm.close();
    await bus.close();
    fail(`--http: ${(e as Error).message}`, 1);
  }
  const waitStart = flags["wait-start"];
  console.error(
    `${CPU_SERVICE_NAME} ready: ${svc.prefix} ${waitStart ? "waiting-for-start " : ""}ram=${
      Math.floor(vm.machine.mem.ramSize / 1048576)
    }M ` +
      `${restoreFrom === undefined ? "" : `restored=${restoreFrom} `}${
        incomingClock ? "migrated-in " : ""
      }devices=${vm.status().devices.map((d) => `${d.device}(${d.kind})`).join(",")}`,
  );
  // A stop request or a signal also ends the wait: run() then returns at once.
  if (waitStart) await Promise.race([vm.startRequested, stopSignal]);
  const t0 = performance.now();
  let code: number;
  let crashed = false;
  try {
    code = await vm.run();
  } catch (e) {
    console.error(`${CPU_SERVICE_NAME}: machine failed: ${(e as Error).stack ?? e}`);
    code = 1;
    crashed = true;
  }
  for (const u of unhook) u();
  await dbg?.close(code);
  if (recorder) {
    console.error(
      `${CPU_SERVICE_NAME}: recorded ${flags.record}: ${recorder.checkpoints} checkpoints, ` +
        `${vm.machine.instret} instructions`,
    );
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(2);
  const m = vm.machine;
  const why = {
    poweroff: "guest powered off",
    fail: `guest reported failure (code ${code})`,
    reset: "guest requested a reset (not supported: stopping)",
    htif: `program exited with code ${code}`,
    limit: "instruction limit reached",
    stopped: "stopped on request",
  }[m.stopCause ?? "stopped"];
  const what = crashed
    ? "emulator error"
    : vm.migratedTo !== undefined
    ? `migrated to host ${vm.migratedTo}`
    : why;
  console.error(
    `${CPU_SERVICE_NAME}: ${what} after ${secs} s, ${m.instret} instructions, ` +
      `pc=0x${pcBits(m.hart.pc).toString(16)}` +
      (m.threadStats ? `, ${m.threadStats.length} hart threads` : ""),
  );
  await http?.close();
  await vm.close();
  await bus.close();
  return code;
}
