/**
 * `./vmesh boot --replay FILE`: a recorded `vmesh boot` run again in this process without any
 * service (no bus, no disk, net or console service): the machine is built with the devices the
 * recording names (disks with their logged geometry, nics with their MACs, the seeded rng, in
 * the CPU service's slot order), block replies and received frames come from the log at their
 * steps, console input too; every checkpoint is compared. With `gdb`, the GDB stub serves the
 * replay with reverse execution (time_travel.ts: snapshots include the device side's state).
 *
 * @example
 * ```ts
 * // const r = await replayBoot({ log: "boot.log", ramSize, harts: 1, bios, kernel, initrd, append,
 * //   output: (b) => Deno.stdout.writeSync(b) });
 * ```
 * @module
 */
import { Machine } from "../machine/machine.ts";
import { VirtioBlk } from "../virtio/blk.ts";
import { VirtioNet } from "../virtio/net.ts";
import { VirtioRng } from "../virtio/rng.ts";
import type { VirtioSlotSpec } from "../virtio/slot.ts";
import { imagesDigest, ReplayError, RunReplayer } from "./run_log.ts";
import { DeviceReplayer } from "./device_log.ts";
import { TimeTravel } from "./time_travel.ts";
import { type DebugHart, type GdbAddress, GdbServer, GdbStub } from "../gdb/mod.ts";

/** What {@link replayBoot} replays, with the recording's flags. */
export interface BootReplayOptions {
  log: string;
  ramSize: number;
  harts: number;
  bios: string | null;
  kernel: string;
  initrd?: string;
  append?: string;
  /** Console output of the replay. */
  output: (bytes: Uint8Array) => void;
  /** Serve gdb there, with reverse execution (`reverse-stepi`, `reverse-continue`). */
  gdb?: GdbAddress;
  /** Hold the harts until gdb connects and continues (`-S`). */
  waitGdb?: boolean;
  /** With `gdb`: where the stub listens, once it does. */
  onGdbListening?: (addr: Deno.NetAddr) => void;
  /** With `gdb`: instructions between snapshots. */
  snapshotEvery?: number;
  /** With `gdb`: most bytes of RAM pages the snapshots hold. */
  snapshotMemory?: number;
}

/** How a replay went. */
export interface BootReplayResult {
  code: number;
  /** Set when the replay went another way than the recording (it stopped there). */
  divergence: string | undefined;
  checkpoints: number;
  instructions: number;
  /** Block replies and frames applied from the log (again on each pass of a rewound run). */
  blockReplies: number;
  frames: number;
  /** With `gdb`: travels back, snapshots kept, snapshots thinned, bytes of RAM they hold. */
  reverse?: { travels: number; snapshots: number; thinned: number; heldBytes: number };
  /** The replay was stopped from outside (gdb's kill) before the recording's end. */
  stoppedEarly: boolean;
}

/** Replays a `vmesh boot --record` log; throws a ReplayError when it cannot start. */
export async function replayBoot(o: BootReplayOptions): Promise<BootReplayResult> {
  const read = async (path: string, what: string) => {
    try {
      return await Deno.readFile(path);
    } catch (e) {
      throw new ReplayError(`cannot read ${what} ${path}: ${(e as Error).message}`);
    }
  };
  const kernel = await read(o.kernel, "kernel");
  const bios = o.bios === null ? null : await read(o.bios, "firmware");
  const initrd = o.initrd === undefined ? undefined : await read(o.initrd, "initrd");
  const parts = [kernel, bios, initrd].filter((p) => p != null);
  const replayer = await RunReplayer.open(o.log, {
    vmesh: "run-log",
    images: await imagesDigest(parts),
    ramSize: o.ramSize,
    harts: o.harts,
    append: o.append,
  });
  const devices = replayer.header.devices;
  if (!devices) throw new ReplayError(`${o.log} is not a vmesh boot recording (no devices)`);
  const io = new DeviceReplayer(replayer);
  let blockReplies = 0, frames = 0;
  replayer.onDevice = ((apply) => (e) => {
    if ("blk" in e) blockReplies++;
    else if ("net" in e) frames++;
    apply?.(e);
  })(replayer.onDevice);
  // The CPU service's slot order: disks, nics, then the rng.
  const specs: VirtioSlotSpec[] = [];
  let slot = 0;
  for (const device of devices.disks) {
    const blk = await VirtioBlk.open(io.block(device), { serial: device });
    specs.push({ slot: slot++, device: blk });
  }
  devices.nics.forEach((mac, i) => {
    const net = new VirtioNet({ send() {} }, { mac });
    io.receive(i, (f) => net.receive(f));
    specs.push({ slot: slot++, device: net });
  });
  if (devices.rng) specs.push({ slot: slot++, device: new VirtioRng({ entropy: io.entropy }) });
  if (o.gdb && replayer.header.version < 2) {
    throw new ReplayError(
      `${o.log} was recorded by an older vmesh (log version 1): reverse execution needs a ` +
        `recording made now (record it again)`,
    );
  }
  const tt = o.gdb
    ? new TimeTravel(replayer, {
      harts: o.harts,
      ramSize: o.ramSize,
      snapshotEvery: o.snapshotEvery,
      snapshotMemory: o.snapshotMemory,
      io,
    })
    : undefined;
  let stub: GdbStub | undefined;
  const m = new Machine({
    ramSize: o.ramSize,
    harts: o.harts,
    bios,
    kernel,
    initrd,
    append: o.append,
    virtio: specs,
    clock: "instructions",
    engine: "interp",
    journal: tt ?? io,
    rtcEpochNs: replayer.header.rtcEpochNs,
    maxInstructions: replayer.header.maxInstructions,
    onConsoleOutput: tt ? (b) => tt.output(b, o.output) : o.output,
    debug: o.gdb ? { runBatch: (n, hart) => stub!.runBatch(n, hart) } : undefined,
  });
  let server: GdbServer | undefined;
  if (o.gdb) {
    stub = new GdbStub({
      harts: m.harts as unknown as DebugHart[],
      mem: m.mem,
      kill: () => m.stop(0),
    }, { waitForClient: o.waitGdb, reverse: tt });
    try {
      server = new GdbServer(stub, o.gdb);
    } catch (e) {
      throw new ReplayError(
        `cannot listen for gdb on ${o.gdb.hostname}:${o.gdb.port}: ${(e as Error).message} ` +
          `(choose another port, or tcp:HOST:0 for a free one)`,
      );
    }
    o.onGdbListening?.(server.addr);
  }
  let code: number;
  try {
    code = await m.run();
  } finally {
    stub?.targetExited(code! ?? 0);
    await server?.close();
  }
  return {
    code,
    divergence: replayer.divergence,
    checkpoints: replayer.checkpoints,
    instructions: m.instret,
    blockReplies,
    frames,
    reverse: tt && {
      travels: tt.travels,
      snapshots: tt.snapshots.length,
      thinned: tt.thinned,
      heldBytes: tt.heldBytes,
    },
    stoppedEarly: replayer.stoppedEarly,
  };
}
