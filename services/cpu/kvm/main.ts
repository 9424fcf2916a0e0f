/**
 * `deno run -A services/cpu/kvm/main.ts [--kernel F] [--initrd F] [--append S] [-m MiB] [-- CMD]`:
 * boots an x86-64 guest on KVM (default: the cached Debian amd64 guest, its ELF vmlinux; --kernel
 * takes a bzImage or an ELF vmlinux). With a command after
 * `--` it runs in batch mode (the guest /init runs it and resets); otherwise an interactive shell.
 */
import { parseArgs } from "node:util";
import { runKvmGuest } from "./run_guest.ts";
import { ensureX86Guest } from "../../../guest/x86/build.ts";
import { kvmBackend, PVM_KERNEL_ARGS, PVM_WARNING } from "./host_kvm.ts";

/** The default command line: serial console, i8042 reset for reboot, no PCI probing. */
export const DEFAULT_KVM_CMDLINE =
  "console=ttyS0 reboot=k panic=-1 pci=off nomodules 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet";

/** Parses argv and boots; returns the process exit code. */
export async function kvmMain(argv: string[]): Promise<number> {
  const dd = argv.indexOf("--");
  const cmd = dd >= 0 ? argv.slice(dd + 1).join(" ") : "";
  const { values } = parseArgs({
    args: dd >= 0 ? argv.slice(0, dd) : argv,
    options: {
      kernel: { type: "string" },
      initrd: { type: "string" },
      append: { type: "string" },
      memory: { type: "string", short: "m", default: "256" },
      accel: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: vmesh boot --accel kvm [--kernel bzImage|vmlinux] [--initrd F] [--append ARGS] [-m MiB] [-- CMD]",
    );
    return 0;
  }
  const mib = Number(values.memory);
  if (!Number.isInteger(mib)) throw new Error(`-m ${values.memory}: give guest memory in MiB`);
  let kernelPath = values.kernel, initrdPath = values.initrd;
  if (!kernelPath) {
    const g = await ensureX86Guest();
    kernelPath = g.vmlinux; // the ELF: no decompressor to run in the guest
    initrdPath ??= g.initramfsCpio; // uncompressed: the guest kernel has nothing to inflate
  }
  let cmdline = values.append ?? DEFAULT_KVM_CMDLINE;
  if (cmd) cmdline += ` vmesh.cmd64=${btoa(String.fromCharCode(...new TextEncoder().encode(cmd)))}`;
  if (kvmBackend() === "pvm") {
    console.error(PVM_WARNING);
    cmdline += ` ${PVM_KERNEL_ARGS}`;
  }
  const started = performance.now();
  const exit = await runKvmGuest({
    kernel: await Deno.readFile(kernelPath),
    initrd: initrdPath ? await Deno.readFile(initrdPath) : undefined,
    cmdline,
    memoryBytes: mib * 2 ** 20,
    interactive: !cmd,
  });
  const ms = (performance.now() - started).toFixed(0);
  if (exit.kind === "error") {
    const rip = exit.rip === undefined ? "" : ` at rip 0x${exit.rip.toString(16)}`;
    console.error(`vmesh: KVM VM error: ${exit.message}${rip} (after ${ms} ms)`);
    return 2;
  }
  console.error(`vmesh: VM ended: ${exit.message} (after ${ms} ms)`);
  return 0;
}

if (import.meta.main) {
  try {
    Deno.exit(await kvmMain(Deno.args));
  } catch (err) {
    console.error(`vmesh: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
