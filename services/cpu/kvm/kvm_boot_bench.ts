/**
 * KVM boot benchmark (`deno task bench`, or `deno bench -A services/cpu/kvm/kvm_boot_bench.ts`):
 * the minimal x86-64 kernel (guest/x86/kernel.ts, ELF vmlinux) with the busybox-static
 * initramfs on /dev/kvm, `./vmesh boot --accel kvm`'s engine (`services/cpu/kvm/main.ts`)
 * against `qemu-system-x86_64 -accel kvm -M microvm` (PVH entry into the same vmlinux) in the
 * same run: milliseconds from spawn to the kernel's banner ("Linux version", with earlyprintk)
 * to the kernel's exec of /init ("Run /init as init process") and, where guest user space runs
 * (not on a PVM host), to /init's own "vmesh-guest: init ready". VMESH_BENCH_KVM_VMLINUX boots
 * another vmlinux. With VMESH_BENCH_KVM_DEBIAN=1 it
 * boots Debian's amd64 kernel instead, to the banner only (on a PVM host it takes many
 * minutes to /init). Both get the PVM kernel arguments on a PVM host. Prints each time and
 * the ratio vmesh/QEMU; nothing asserts on time. Skipped without /dev/kvm or QEMU;
 * VMESH_BENCH_SKIP_KVM skips it too.
 */
import { fileURLToPath } from "node:url";
import { ensureX86Guest, ensureX86Initramfs } from "../../../guest/x86/build.ts";
import { ensureX86Kernel } from "../../../guest/x86/kernel.ts";
import { timeMarkers } from "../../../cli/marker_timer.ts";
import { kvmBackend, PVM_KERNEL_ARGS } from "./host_kvm.ts";

const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
const BANNER = "Linux version", INIT = "vmesh-guest: init ready";
/** The kernel's exec of /init (printed before the first user instruction runs). */
const RUN_INIT = "Run /init as init process";
/** Another vmlinux to boot instead of the cached minimal one (same initramfs). */
const VMLINUX = Deno.env.get("VMESH_BENCH_KVM_VMLINUX");
const DEBIAN = Deno.env.get("VMESH_BENCH_KVM_DEBIAN") === "1";
const LIMIT_MS = 300_000;
const APPEND = "earlyprintk=serial,ttyS0,115200 console=ttyS0 reboot=k panic=-1 pci=off nomodules";
// main.ts adds the PVM arguments itself; QEMU gets them here, so both boot the same command line.
const QEMU_APPEND = APPEND + (kvmBackend() === "pvm" ? ` ${PVM_KERNEL_ARGS}` : "");
const log = (line: string) => console.log(`kvm_boot_bench: ${line}`);

async function has(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

async function qemuPath(): Promise<string | undefined> {
  const out = await new Deno.Command("sh", {
    args: ["-c", "command -v qemu-system-x86_64"],
    stdout: "piped",
  }).output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : undefined;
}

async function measure(): Promise<void> {
  if (Deno.env.get("VMESH_BENCH_SKIP_KVM")) return log("skipped (VMESH_BENCH_SKIP_KVM)");
  if (!await has("/dev/kvm")) return log("skipped: /dev/kvm is absent");
  const qemu = await qemuPath();
  if (!qemu) return log("skipped: qemu-system-x86_64 not found (Debian package qemu-system-x86)");
  const g = DEBIAN ? await ensureX86Guest() : {
    vmlinux: VMLINUX ?? (await ensureX86Kernel()).vmlinux,
    initramfs: (await ensureX86Initramfs()).initramfsCpio,
    kernelPackage: "minimal linux-source-6.1 (guest/x86/kernel.config)",
  };
  // On a PVM host /init dies at its first system call (host_kvm.ts): its own marker never comes.
  const markers = DEBIAN
    ? [BANNER]
    : kvmBackend() === "pvm"
    ? [BANNER, RUN_INIT]
    : [BANNER, RUN_INIT, INIT];
  log(`host KVM backend: ${kvmBackend()}; guest ${g.kernelPackage}; markers ${markers.join(", ")}`);
  const vmesh = await timeMarkers(Deno.execPath(), [
    "run",
    "-A",
    MAIN,
    "--kernel",
    g.vmlinux,
    "--initrd",
    g.initramfs,
    "-m",
    "256",
    "--append",
    APPEND,
    "--",
    "true",
  ], { markers, timeoutMs: LIMIT_MS });
  const ref = await timeMarkers(qemu, [
    "-accel",
    "kvm",
    "-M",
    "microvm",
    "-m",
    "256",
    "-nographic",
    "-no-reboot",
    "-kernel",
    g.vmlinux,
    "-initrd",
    g.initramfs,
    "-append",
    QEMU_APPEND,
  ], { markers, timeoutMs: LIMIT_MS });
  for (const m of markers) {
    const a = vmesh.at[m], b = ref.at[m];
    const fmt = (t: number | undefined) => t === undefined ? "not reached" : `${t.toFixed(0)} ms`;
    const ratio = a !== undefined && b !== undefined
      ? ` ratio vmesh/qemu ${(a / b).toFixed(2)}`
      : "";
    log(`"${m}": vmesh kvm ${fmt(a)}, qemu -accel kvm -M microvm ${fmt(b)}${ratio}`);
  }
}

await measure();
