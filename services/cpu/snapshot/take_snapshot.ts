/**
 * Taking a snapshot of a running machine: the guest is held, each disk service freezes a
 * point of its disk (every write answered so far is in it), then hart and device records and
 * a copy of every non-zero RAM page are taken in one synchronous step on the thread that runs
 * the harts (no instruction retires and no device completion lands meanwhile: one instant of
 * the guest, and requests still in flight are in the virtio records, resubmitted on restore);
 * the guest then runs on while the pages the memory service lacks, the index pages, the
 * machine's images and the manifest are stored.
 * @module
 */
import { type Bus, BusError, memory, Status } from "@vmesh/bus";
import type { Machine } from "../machine/machine.ts";
import { saveMachine } from "./machine_state.ts";
import type { SnapshotMachineFlags } from "./machine_flags.ts";
import { chunks, indexPages, PAGE_SIZE, scanRam, sha256Hex } from "./ram_pages.ts";
import { memoryCall, storePages } from "./page_client.ts";
import { SnapshotError } from "./snapshot_error.ts";

/** Manifest names the memory service accepts. */
const NAME = /^[A-Za-z0-9_.-]{1,200}$/;

/** The default snapshot name: `<vm>-<UTC time>`, e.g. `vm1-20261203T094512Z`. */
export function defaultSnapshotName(vm: string, now: Date = new Date()): string {
  return `${vm}-${now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}`;
}

/** What a snapshot is taken of. */
export interface SnapshotSource {
  bus: Bus;
  vm: string;
  machine: Machine;
  flags: SnapshotMachineFlags;
  /** The files the machine was built from. */
  images: { role: string; bytes: Uint8Array }[];
  /** Holds (true) or releases (false) the guest: no new device requests while held. */
  hold(held: boolean): void;
  /** Freezes a point of every disk for snapshot `name` (called with the guest held). */
  checkpointDisks(name: string): Promise<memory.DiskPoint[]>;
}

/**
 * What a snapshot stored and how long it took (the reply of `ctl.snapshot`, less status);
 * `pausedMs` is the time the guest was held (the capture), `totalMs` the whole op.
 */
export interface SnapshotResult {
  name: string;
  pages: number;
  zeroPages: number;
  distinctPages: number;
  sentPages: number;
  sentBytes: number;
  pausedMs: number;
  totalMs: number;
}

/**
 * Stores `src`'s machine under `name` (default {@link defaultSnapshotName}); refuses a name
 * already stored. The guest is held only while its state is copied.
 */
export async function takeSnapshot(src: SnapshotSource, name?: string): Promise<SnapshotResult> {
  const t0 = performance.now();
  const snapName = name || defaultSnapshotName(src.vm);
  if (!NAME.test(snapName) || snapName === "." || snapName === "..") {
    throw new BusError(
      Status.INVALID_ARGUMENT,
      `bad snapshot name ${JSON.stringify(snapName)}: use letters, digits, _ . - (at most 200)`,
    );
  }
  await refuseExisting(src.bus, snapName);

  const m = src.machine;
  const held = performance.now();
  src.hold(true);
  let disks, state, mtime, scan;
  try {
    disks = await src.checkpointDisks(snapName);
    state = saveMachine(m);
    mtime = m.clock.now();
    scan = scanRam(m.mem.ram());
  } finally {
    src.hold(false);
  }
  const pausedMs = performance.now() - held;

  const pages = new Map(scan.distinct);
  const pageIndex = indexPages(scan.hashes).map((ip) => {
    const h = sha256Hex(ip);
    pages.set(h, ip);
    return h;
  });
  const images: memory.ImageRef[] = src.images.map(({ role, bytes }) => ({
    role,
    size: bytes.length,
    pages: chunks(bytes).map((c) => {
      const h = sha256Hex(c);
      pages.set(h, c);
      return h;
    }),
  }));
  const stored = await storePages(src.bus, pages);
  const manifest: memory.SnapshotManifest = {
    vm: src.vm,
    pages: [],
    cpuState: new Uint8Array(),
    devices: state.devices,
    harts: state.harts,
    pageSize: PAGE_SIZE,
    ramBase: 0x8000_0000,
    ramSize: m.mem.ramSize,
    pageIndex,
    images,
    machine: JSON.stringify(src.flags),
    mtime,
    createdUnixMs: Date.now(),
    ramPagesStored: scan.distinct.size,
    disks,
  };
  await memoryCall(
    src.bus,
    memory.ops.put_manifest,
    { name: snapName, manifest },
    `storing manifest ${snapName}`,
  );
  return {
    name: snapName,
    pages: scan.pages,
    zeroPages: scan.zeroPages,
    distinctPages: scan.distinct.size,
    sentPages: stored.sent,
    sentBytes: stored.bytes,
    pausedMs,
    totalMs: performance.now() - t0,
  };
}

async function refuseExisting(bus: Bus, name: string): Promise<void> {
  try {
    await memoryCall(bus, memory.ops.get_manifest, { name }, `looking up ${name}`);
  } catch (e) {
    if (e instanceof SnapshotError && /no manifest/.test(e.message)) return;
    throw e;
  }
  throw new BusError(
    Status.FAILED_PRECONDITION,
    `a snapshot named ${name} exists already: choose another name`,
  );
}
