/**
 * The debugger's view of virtual memory: an Sv39/Sv48 page-table walk that only reads (no
 * A/D updates, no faults recorded, no TLB fills), as QEMU's gdbstub translates with the
 * hart's current mode: M-mode or satp mode Bare means physical addresses.
 */

/** Reads 8 bytes of guest-physical memory; null outside RAM. */
export type PhysRead64 = (paddr: number) => bigint | null;

const PTE_V = 1n, PTE_R = 2n, PTE_X = 8n;

/**
 * Translates `va` with `satp` (the walk's satp value) for a debugger access; null when the
 * address does not map (invalid entry, non-canonical address, misaligned superpage).
 *
 * @example
 * ```ts
 * declare const read64: PhysRead64;
 * debugTranslate(0n, 0x8000_1000n, read64); // 0x80001000: Bare mode is physical
 * ```
 */
export function debugTranslate(satp: bigint, va: bigint, read64: PhysRead64): number | null {
  const mode = Number(satp >> 60n);
  if (mode === 0) return Number(BigInt.asUintN(64, va));
  const levels = mode === 8 ? 3 : mode === 9 ? 4 : 0;
  if (levels === 0) return null;
  const vaBits = 12 + 9 * levels;
  // Canonical: the bits above the top VPN bit copy it.
  if (BigInt.asIntN(vaBits, va) !== BigInt.asIntN(64, va)) return null;
  let table = (satp & ((1n << 44n) - 1n)) << 12n;
  for (let level = levels - 1; level >= 0; level--) {
    const vpn = (va >> BigInt(12 + 9 * level)) & 0x1ffn;
    const pte = read64(Number(table + vpn * 8n));
    if (pte === null || (pte & PTE_V) === 0n) return null;
    const ppn = (pte >> 10n) & ((1n << 44n) - 1n);
    if ((pte & (PTE_R | PTE_X)) !== 0n) {
      const low = BigInt(9 * level);
      if ((ppn & ((1n << low) - 1n)) !== 0n) return null; // misaligned superpage
      const pageMask = (1n << (12n + low)) - 1n;
      return Number(((ppn << 12n) & ~pageMask) | (va & pageMask));
    }
    table = ppn << 12n;
  }
  return null;
}
