/**
 * Runs a bare-metal ELF on vmesh's `virt` machine with virtio devices plugged in, the way
 * `qemu-system-riscv64 -device virtio-rng-device,bus=virtio-mmio-bus.N` (or a virtio-blk-device
 * on a raw `-drive`) does: the counterpart of `runQemu` for the QEMU-compatibility tests
 * (`./vmesh run` has no virtio flags). A disk is the raw image file itself, served by the disk
 * service's own raw-file backend in this process; a NIC joins an in-process virtual switch of
 * the net service with its gateway on 10.0.2.2 (ARP, ping, DHCP), as QEMU's `-netdev user`.
 *
 * @example
 * ```sh
 * deno run -A tests/qemu_compat_machine.ts --rng 0 --blk 1=disk.img --timeout 60 program.elf
 * ```
 */
import { RawFile } from "../services/disk/raw_file.ts";
import { EXIT_STOPPED, Machine } from "../services/cpu/machine/machine.ts";
import { type BlockBackendClient, VirtioBlk } from "../services/cpu/virtio/blk.ts";
import { VirtioNet } from "../services/cpu/virtio/net.ts";
import { Gateway } from "../services/net/gateway.ts";
import { parseIp } from "../services/net/packet.ts";
import { VirtualSwitch } from "../services/net/switch.ts";
import { VirtioRng } from "../services/cpu/virtio/rng.ts";
import type { VirtioSlotSpec } from "../services/cpu/virtio/slot.ts";

const USAGE = "usage: qemu_compat_machine.ts [--rng SLOT]... [--blk SLOT=IMAGE]... " +
  "[--net SLOT] [--legacy] [--timeout SECONDS] ELF";

/** The NIC's MAC: QEMU's default. */
const NIC_MAC = "52:54:00:12:34:56";

/** Parsed command line. */
interface Args {
  elf: string;
  rngSlots: number[];
  disks: { slot: number; path: string }[];
  netSlots: number[];
  /** Legacy (Version 1) transports, as QEMU `virt` without force-legacy=false. */
  legacy: boolean;
  timeoutS: number;
}

const slotNumber = (v: string, flag: string) => {
  const slot = Number(v);
  if (!/^[0-7]$/.test(v)) throw new Error(`${flag}: slot 0..7, got '${v}'`);
  return slot;
};

/** A raw image file as the virtio-blk front-end's backend (what the disk service serves). */
async function rawDisk(path: string): Promise<BlockBackendClient> {
  const raw = await RawFile.open(path);
  const info = raw.info();
  return {
    info: () => Promise.resolve({ sizeBytes: info.sizeBytes, readOnly: false, discard: false }),
    read: (offset, length) => raw.read(offset, length),
    write: (offset, data) => raw.write(offset, data),
    flush: () => raw.flush(),
    discard: (offset, length) => raw.discard(offset, length),
  };
}

/**
 * A virtio-net device on its own in-process switch with a gateway at 10.0.2.2, the address
 * QEMU's user networking answers on. Frames cross in a later task (never inside the guest's
 * queue notification), as they would over the bus.
 */
function switchedNic(slot: number): VirtioNet {
  const sw = new VirtualSwitch(`compat${slot}`);
  new Gateway(sw, { network: parseIp("10.0.2.0")!, prefix: 24, gateway: parseIp("10.0.2.2")! });
  const port = `vm${slot}`;
  const nic = new VirtioNet({ send: (f) => void setTimeout(() => sw.input(port, f), 0) }, {
    mac: NIC_MAC,
  });
  sw.join(port, NIC_MAC, (frame) => {
    setTimeout(() => nic.receive(frame), 0);
    return true;
  });
  return nic;
}

function parse(argv: string[]): Args {
  const out: Args = {
    elf: "",
    rngSlots: [],
    disks: [],
    netSlots: [],
    legacy: false,
    timeoutS: 60,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === "--rng") out.rngSlots.push(slotNumber(value(), a));
    else if (a === "--net") out.netSlots.push(slotNumber(value(), a));
    else if (a === "--blk") {
      const v = value();
      const eq = v.indexOf("=");
      if (eq < 0) throw new Error(`--blk needs SLOT=IMAGE, got '${v}'`);
      out.disks.push({ slot: slotNumber(v.slice(0, eq), a), path: v.slice(eq + 1) });
    } else if (a === "--legacy") out.legacy = true;
    else if (a === "--timeout") out.timeoutS = Number(value());
    else if (a.startsWith("-")) throw new Error(`unknown option ${a}\n${USAGE}`);
    else out.elf = a;
  }
  if (out.elf === "") throw new Error(`no ELF given\n${USAGE}`);
  return out;
}

/** Runs the ELF; resolves to the guest's exit code (124 when the time limit stopped it). */
export async function runCompatMachine(argv: string[]): Promise<number> {
  const args = parse(argv);
  const legacy = args.legacy;
  const virtio: VirtioSlotSpec[] = args.rngSlots.map((slot) => ({
    slot,
    device: new VirtioRng(),
    legacy,
  }));
  for (const d of args.disks) {
    virtio.push({ slot: d.slot, device: await VirtioBlk.open(await rawDisk(d.path)), legacy });
  }
  for (const slot of args.netSlots) virtio.push({ slot, device: switchedNic(slot), legacy });
  const out = Deno.stdout;
  const machine = new Machine({
    ramSize: 128 << 20,
    bios: null,
    kernel: args.elf,
    virtio,
    onConsoleOutput: (bytes) => {
      let off = 0;
      while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
    },
  });
  const timer = setTimeout(() => machine.stop(EXIT_STOPPED), args.timeoutS * 1000);
  try {
    return await machine.run();
  } finally {
    clearTimeout(timer);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await runCompatMachine(Deno.args));
  } catch (e) {
    console.error(`qemu_compat_machine: ${e instanceof Error ? e.message : e}`);
    Deno.exit(2);
  }
}
