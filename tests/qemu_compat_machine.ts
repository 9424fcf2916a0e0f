/**
 * Runs a bare-metal ELF on vmesh's `virt` machine with virtio devices plugged in, the way
 * `qemu-system-riscv64 -device virtio-rng-device,bus=virtio-mmio-bus.N` does: the counterpart
 * of `runQemu` for the QEMU-compatibility tests (`./vmesh run` has no virtio flags).
 *
 * @example
 * ```sh
 * deno run -A tests/qemu_compat_machine.ts --rng 0 --timeout 60 build/riscv/<hash>/virtio_legacy_rng.elf
 * ```
 */
import { EXIT_STOPPED, Machine } from "../services/cpu/machine/machine.ts";
import { VirtioRng } from "../services/cpu/virtio/rng.ts";
import type { VirtioSlotSpec } from "../services/cpu/virtio/slot.ts";

const USAGE = "usage: qemu_compat_machine.ts [--rng SLOT]... [--timeout SECONDS] ELF";

/** Parsed command line. */
interface Args {
  elf: string;
  rngSlots: number[];
  timeoutS: number;
}

function parse(argv: string[]): Args {
  const out: Args = { elf: "", rngSlots: [], timeoutS: 60 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    if (a === "--rng") {
      const slot = Number(value());
      if (!Number.isInteger(slot) || slot < 0 || slot > 7) throw new Error(`--rng: slot 0..7`);
      out.rngSlots.push(slot);
    } else if (a === "--timeout") out.timeoutS = Number(value());
    else if (a.startsWith("-")) throw new Error(`unknown option ${a}\n${USAGE}`);
    else out.elf = a;
  }
  if (out.elf === "") throw new Error(`no ELF given\n${USAGE}`);
  return out;
}

/** Runs the ELF; resolves to the guest's exit code (124 when the time limit stopped it). */
export async function runCompatMachine(argv: string[]): Promise<number> {
  const args = parse(argv);
  const virtio: VirtioSlotSpec[] = args.rngSlots.map((slot) => ({
    slot,
    device: new VirtioRng(),
  }));
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
