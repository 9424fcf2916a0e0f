/**
 * SiFive test finisher (QEMU hw/misc/sifive_test.c): a 16- or 32-bit write at offset 0 of
 * 0x5555 powers off with success, 0x3333 | (code << 16) with failure `code`, 0x7777 resets.
 */
import type { MmioDevice, Stateful } from "../machine/mmio.ts";

/** What the guest asked the finisher for. */
export type FinisherRequest =
  | { kind: "pass" }
  | { kind: "fail"; code: number }
  | { kind: "reset" };

/** Status codes in the low 16 bits. */
export const FinisherStatus = { FAIL: 0x3333, PASS: 0x5555, RESET: 0x7777 } as const;

/** The test finisher; it holds no state besides the callback. */
export class SifiveTest implements MmioDevice, Stateful<Record<string, never>> {
  readonly name = "test";

  constructor(private readonly onRequest: (req: FinisherRequest) => void) {}

  read(_offset: number, _size: 1 | 2 | 4): number {
    return 0;
  }

  write(offset: number, size: 1 | 2 | 4, value: number): void {
    // OpenSBI writes the status with a 16-bit store; QEMU accepts 2- and 4-byte writes.
    if (offset !== 0 || size === 1) return;
    const status = value & 0xffff;
    if (status === FinisherStatus.PASS) this.onRequest({ kind: "pass" });
    else if (status === FinisherStatus.FAIL) this.onRequest({ kind: "fail", code: value >>> 16 });
    else if (status === FinisherStatus.RESET) this.onRequest({ kind: "reset" });
  }

  save(): Record<string, never> {
    return {};
  }

  load(_state: Record<string, never>): void {}
}
