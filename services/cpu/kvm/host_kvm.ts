/**
 * What implements /dev/kvm on this host. Some sandboxes expose KVM through PVM (the kvm_pvm
 * module: a pagetable-based hypervisor without VT-x/AMD-V), which runs guest user mode natively
 * but emulates every guest supervisor-mode instruction unless the guest kernel is built for PVM.
 */

/** "pvm" when the kvm_pvm module provides /dev/kvm, else "hardware" (kvm_intel / kvm_amd). */
export type KvmBackend = "pvm" | "hardware";

/**
 * Which KVM backend this host has, from /sys/module.
 *
 * @example
 * ```ts
 * if (kvmBackend() === "pvm") console.error("guest kernel code will be emulated");
 * ```
 */
export function kvmBackend(sysModule = "/sys/module"): KvmBackend {
  try {
    Deno.statSync(`${sysModule}/kvm_pvm`);
    return "pvm";
  } catch {
    return "hardware";
  }
}

/** The warning printed before a boot on a PVM host (figures measured, see README). */
export const PVM_WARNING =
  "vmesh: this host's /dev/kvm is PVM (kvm_pvm, no VT-x/AMD-V): an unmodified guest kernel's " +
  "supervisor code runs in KVM's instruction emulator (measured 0.2-0.6 M instructions/s), so " +
  "Linux takes minutes to reach /init here";

/**
 * Kernel parameters that keep Linux off instructions KVM's emulator fails on, for a PVM host:
 * this PVM ignores the guest CPUID's XSAVE (leaf 1) and leaf 7 bits given with KVM_SET_CPUID2
 * (measured with a guest reading CPUID), so the kernel is told instead. Seen failing: xrstor64
 * (XSAVE), clac (SMAP, clearcpuid bit 308: 6.1 has no nosmap), popcnt (POPCNT, bit 151);
 * preemptive: FSGSBASE, PKU, INVPCID, RDRAND/RDSEED (clearcpuid bits 158, 306). `noapictimer`
 * keeps the tick on the PIT, which KvmMachine slows down on PVM (slow_pit.ts): the LAPIC's
 * TSC-deadline tick at HZ took all the emulated instructions (measured, see README).
 */
export const PVM_KERNEL_ARGS =
  "noxsave nofsgsbase nopku noinvpcid clearcpuid=151,158,306,308 noapictimer";

/**
 * Why /init dies at its first system call on a PVM host: a guest user-mode `syscall` enters the
 * LSTAR handler without supervisor rights (measured: tests/kvm_boot_test.ts, `syscallGuest`,
 * triple-faults on the handler's supervisor-only page; Linux's init segfaults at
 * entry_SYSCALL_64). PVM delivers user-mode syscalls through its own event ABI, which only a
 * kernel built as a PVM guest sets up.
 */
export const PVM_USER_MODE_HINT =
  "vmesh: /init faulted at a kernel address on its first system call: this PVM host enters a " +
  "guest's syscall handler without supervisor rights unless the kernel is built as a PVM guest " +
  "(CONFIG_PVM_GUEST, not in linux-source-6.1); guest user space needs a host with VT-x/AMD-V";
