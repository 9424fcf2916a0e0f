/**
 * CPUID features hidden from the guest when its supervisor code runs in KVM's instruction
 * emulator (a PVM host, see README.md): instructions the emulator cannot execute, which Linux
 * uses only when CPUID offers them. A "seen" entry failed here (KVM_EXIT_INTERNAL_ERROR with its
 * bytes); a "preemptive" one is hidden before a boot reached it, as an instruction the emulator
 * is not known to handle. The PVM host measured here honours only some of these clears (a guest
 * reading CPUID saw CX16 gone but XSAVE, AVX, RDRAND and every leaf 7 bit still set), so
 * host_kvm.ts's PVM_KERNEL_ARGS tell the kernel too.
 */

/** One CPUID bit to clear. */
export interface HiddenFeature {
  leaf: number;
  reg: "ebx" | "ecx" | "edx";
  bit: number;
  name: string;
  why: string;
}

/** The features cleared on an emulating host. */
export const EMULATOR_HIDDEN_FEATURES: readonly HiddenFeature[] = [
  { leaf: 1, reg: "ecx", bit: 13, name: "CX16", why: "seen: SLUB's lock cmpxchg16b" },
  { leaf: 1, reg: "ecx", bit: 26, name: "XSAVE", why: "seen: xrstor64 in FPU init" },
  { leaf: 1, reg: "ecx", bit: 27, name: "OSXSAVE", why: "follows XSAVE" },
  { leaf: 1, reg: "ecx", bit: 28, name: "AVX", why: "needs XSAVE" },
  {
    leaf: 1,
    reg: "ecx",
    bit: 30,
    name: "RDRAND",
    why: "preemptive: rdrand in the entropy pool init",
  },
  {
    leaf: 7,
    reg: "ebx",
    bit: 0,
    name: "FSGSBASE",
    why: "preemptive: rdgsbase/wrfsbase on context switch",
  },
  { leaf: 7, reg: "ebx", bit: 10, name: "INVPCID", why: "preemptive: invpcid in TLB flushes" },
  {
    leaf: 7,
    reg: "ebx",
    bit: 18,
    name: "RDSEED",
    why: "preemptive: rdseed in the entropy pool init",
  },
  { leaf: 7, reg: "ebx", bit: 20, name: "SMAP", why: "preemptive: stac/clac around user copies" },
  { leaf: 7, reg: "ecx", bit: 3, name: "PKU", why: "preemptive: rdpkru/wrpkru on context switch" },
  { leaf: 7, reg: "ecx", bit: 22, name: "RDPID", why: "preemptive: rdpid in the entry code" },
];

const REG_OFFSET = { ebx: 16, ecx: 20, edx: 24 } as const;

/**
 * Clears the features in a kvm_cpuid2 buffer (u32 nent, padding, then 40-byte entries).
 *
 * @example
 * ```ts
 * hideFeatures(new DataView(cpuid.buffer), EMULATOR_HIDDEN_FEATURES);
 * ```
 */
export function hideFeatures(cpuid: DataView, features: readonly HiddenFeature[]): void {
  const n = cpuid.getUint32(0, true);
  for (let i = 0; i < n; i++) {
    const o = 8 + i * 40;
    const leaf = cpuid.getUint32(o, true), index = cpuid.getUint32(o + 4, true);
    for (const f of features) {
      if (f.leaf !== leaf || (leaf === 7 && index !== 0)) continue;
      const r = o + REG_OFFSET[f.reg];
      cpuid.setUint32(r, cpuid.getUint32(r, true) & ~(1 << f.bit), true);
    }
  }
}
