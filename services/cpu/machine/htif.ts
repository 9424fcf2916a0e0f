/**
 * HTIF host interface for bare-metal test programs (the Spike convention, as QEMU's `spike`
 * board and riscv-tests use it): the program writes a command to the 64-bit `tohost` word in RAM
 * and the host answers in `fromhost`. Command = device(63:56) | cmd(55:48) | payload(47:0).
 *   device 0, payload bit0 = 1  -> exit with code payload >> 1
 *   device 0, payload bit0 = 0  -> payload points at a syscall block; SYS_write (64) supported
 *   device 1, cmd 1             -> putchar(payload & 0xff), answered with 0x100 | byte
 */
import { type GuestMemory, hostOffset } from "../guest_memory.ts";

const TWO32 = 0x1_0000_0000;
const SYS_WRITE = 64;

/** What a poll found. */
export type HtifEvent = { exit: number } | null;

/** Polls and answers `tohost`. */
export class Htif {
  readonly #mem: GuestMemory;
  readonly #tohost: number;
  readonly #fromhost: number | undefined;
  /** Commands handled so far. */
  commands = 0;

  /**
   * @param tohost guest physical address of `tohost` (8-byte aligned, in RAM)
   * @param fromhost guest physical address of `fromhost`, if the program has one
   * @param output receives console bytes
   */
  constructor(
    mem: GuestMemory,
    tohost: number,
    fromhost: number | undefined,
    private readonly output: (bytes: Uint8Array) => void,
  ) {
    if (!mem.inRam(tohost, 8) || tohost % 8) throw new RangeError("tohost is not in RAM");
    if (fromhost !== undefined && (!mem.inRam(fromhost, 8) || fromhost % 8)) {
      throw new RangeError("fromhost is not in RAM");
    }
    this.#mem = mem;
    this.#tohost = hostOffset(tohost);
    this.#fromhost = fromhost === undefined ? undefined : hostOffset(fromhost);
  }

  /** Handles a pending command, if any. Returns the exit request when the program finished. */
  poll(): HtifEvent {
    const u32 = this.#mem.u32;
    const lo = u32[this.#tohost >> 2], hi = u32[(this.#tohost >> 2) + 1];
    if (lo === 0 && hi === 0) return null;
    const device = hi >>> 24, cmd = (hi >>> 16) & 0xff;
    const payload = (hi & 0xffff) * TWO32 + lo;
    u32[this.#tohost >> 2] = 0;
    u32[(this.#tohost >> 2) + 1] = 0;
    this.commands++;
    if (device === 0 && cmd === 0) {
      if (lo & 1) return { exit: Math.floor(payload / 2) };
      this.#syscall(payload);
      this.#respond(0, 0, 1);
    } else if (device === 1 && cmd === 1) {
      this.output(new Uint8Array([lo & 0xff]));
      this.#respond(1, 1, 0x100 | (lo & 0xff));
    }
    return null;
  }

  /** Proxied syscall block: magic_mem[0] = number, [1..] = arguments; result in [0]. */
  #syscall(addr: number): void {
    const mem = this.#mem;
    if (!mem.inRam(addr, 64)) return;
    const dv = mem.view;
    const base = hostOffset(addr);
    const arg = (i: number) =>
      dv.getUint32(base + i * 8, true) + dv.getUint32(base + i * 8 + 4, true) * TWO32;
    let result = -38; // -ENOSYS
    if (arg(0) === SYS_WRITE && (arg(1) === 1 || arg(1) === 2) && mem.inRam(arg(2), arg(3))) {
      this.output(mem.readPhys(arg(2), arg(3)));
      result = arg(3);
    }
    dv.setInt32(base, result, true);
    dv.setInt32(base + 4, result < 0 ? -1 : 0, true);
  }

  #respond(device: number, cmd: number, value: number): void {
    if (this.#fromhost === undefined) return;
    const u32 = this.#mem.u32;
    u32[this.#fromhost >> 2] = value >>> 0;
    u32[(this.#fromhost >> 2) + 1] = ((device << 24) | (cmd << 16)) >>> 0;
  }
}
