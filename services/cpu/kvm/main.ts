/**
 * `./vmesh boot --accel kvm [--kernel F] [--initrd F] [--append S] [-m MiB] [-- CMD]`, also
 * `deno run -A services/cpu/kvm/main.ts ...`: boots an x86-64 guest on KVM (default: the minimal
 * kernel built from linux-source-6.1 by guest/x86/kernel.ts, with the busybox-static initramfs;
 * `--kernel` takes a bzImage or an ELF vmlinux). With a command after `--` it runs in batch mode
 * (the guest /init runs it and resets); otherwise an interactive shell.
 */
import { parseArgs } from "node:util";
import { runKvmGuest } from "./run_guest.ts";
import { ensureX86Initramfs } from "../../../guest/x86/build.ts";
import { ensureX86Kernel } from "../../../guest/x86/kernel.ts";
import { kvmBackend, PVM_KERNEL_ARGS, PVM_USER_MODE_HINT, PVM_WARNING } from "./host_kvm.ts";
import { parseBatchOutput } from "../../../guest/guest_protocol.ts";
import { type VirtioDevice, VirtioRng } from "../virtio/mod.ts";
import { startBusDrives } from "./bus_drives.ts";
import { virtioMmioCmdline } from "./virtio_mmio_x86.ts";

/** The default command line: serial console, i8042 reset for reboot, no PCI probing. */
export const DEFAULT_KVM_CMDLINE =
  "console=ttyS0 reboot=k panic=-1 pci=off nomodules 8250.nr_uarts=1 i8042.noaux i8042.nomux i8042.dumbkbd quiet";

/** True when `vmesh boot` arguments ask for the KVM engine (`--accel kvm`, QEMU's flag). */
export function kvmRequested(args: string[]): boolean {
  const dd = args.indexOf("--");
  const own = dd >= 0 ? args.slice(0, dd) : args;
  return own.some((a, i) => a === "--accel=kvm" || (a === "--accel" && own[i + 1] === "kvm"));
}

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
      drive: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: vmesh boot --accel kvm [--kernel bzImage|vmlinux] [--initrd F] [--append ARGS] [-m MiB] [--drive IMAGE]... [-- CMD]\n" +
        "  --drive IMAGE  a virtio-blk disk (vda, vdb, ...) served by a disk service on a private bus",
    );
    return 0;
  }
  const mib = Number(values.memory);
  if (!Number.isInteger(mib)) throw new Error(`-m ${values.memory}: give guest memory in MiB`);
  let kernelPath = values.kernel, initrdPath = values.initrd;
  if (values.accel !== undefined && values.accel !== "kvm") {
    throw new Error(`--accel ${values.accel}: this engine is --accel kvm`);
  }
  if (!kernelPath) {
    kernelPath = (await ensureX86Kernel()).vmlinux; // the ELF: no decompressor in the guest
    // Uncompressed: the minimal kernel has no decompressor for it.
    initrdPath ??= (await ensureX86Initramfs()).initramfsCpio;
  }
  let cmdline = values.append ?? DEFAULT_KVM_CMDLINE;
  if (cmd) cmdline += ` vmesh.cmd64=${btoa(String.fromCharCode(...new TextEncoder().encode(cmd)))}`;
  if (kvmBackend() === "pvm") {
    console.error(PVM_WARNING);
    cmdline += ` ${PVM_KERNEL_ARGS}`;
  }
  const drives = values.drive?.length ? await startBusDrives("kvm", values.drive) : undefined;
  // virtio-rng always, then the disks: one virtio-mmio window each.
  const virtio: VirtioDevice[] = [new VirtioRng(), ...(drives?.devices ?? [])];
  cmdline += ` ${virtioMmioCmdline(virtio.length)}`;
  const started = performance.now();
  // The console as text too, for the batch status and the PVM diagnosis.
  let text = "";
  const decoder = new TextDecoder();
  const exit = await runKvmGuest({
    kernel: await Deno.readFile(kernelPath),
    initrd: initrdPath ? await Deno.readFile(initrdPath) : undefined,
    cmdline,
    memoryBytes: mib * 2 ** 20,
    interactive: !cmd,
    virtio,
    onConsole: (b) => {
      Deno.stdout.writeSync(b);
      text = (text + decoder.decode(b, { stream: true })).slice(-65536);
    },
  }).finally(() => drives?.close());
  const ms = (performance.now() - started).toFixed(0);
  if (exit.kind === "error") {
    const rip = exit.rip === undefined ? "" : ` at rip 0x${exit.rip.toString(16)}`;
    console.error(`vmesh: KVM VM error: ${exit.message}${rip} (after ${ms} ms)`);
    return 2;
  }
  console.error(`vmesh: VM ended: ${exit.message} (after ${ms} ms)`);
  if (/init\[1\]: segfault at ffffffff/.test(text) && kvmBackend() === "pvm") {
    console.error(PVM_USER_MODE_HINT);
  }
  if (!cmd) return 0;
  const batch = parseBatchOutput(text);
  if (!batch) {
    console.error(
      "vmesh: the guest ended before its batch command finished (see the console above)",
    );
    return 1;
  }
  return batch.status;
}

/** {@link kvmMain} with every error as a one-line message and exit code 1. */
export async function kvmBoot(argv: string[]): Promise<number> {
  try {
    return await kvmMain(argv);
  } catch (err) {
    console.error(`vmesh: ${err instanceof Error ? err.message : err}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await kvmBoot(Deno.args));
