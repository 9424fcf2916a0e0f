/**
 * QEMU-style console escapes on keyboard input: `Ctrl-A x` quits, `Ctrl-A c` is reserved
 * (a monitor later), `Ctrl-A Ctrl-A` sends one literal Ctrl-A. Any other key after
 * Ctrl-A is dropped together with the Ctrl-A.
 * @module
 */

/** Ctrl-A, the escape prefix. */
export const CTRL_A = 0x01;

/** A command typed after the escape prefix. */
export type EscapeCommand = "quit" | "monitor";

/** Result of feeding keyboard bytes through the decoder. */
export interface Decoded {
  /** Bytes for the guest. */
  forward: Uint8Array;
  /** Escape commands, in the order they were typed. */
  commands: EscapeCommand[];
}

/** Splits keyboard input into guest bytes and escape commands; state spans calls. */
export class EscapeDecoder {
  /** A Ctrl-A was the last byte seen (the escape is pending). */
  pending = false;

  /** Decodes one read of keyboard bytes. */
  feed(input: Uint8Array): Decoded {
    const out: number[] = [];
    const commands: EscapeCommand[] = [];
    for (const b of input) {
      if (!this.pending) {
        if (b === CTRL_A) this.pending = true;
        else out.push(b);
        continue;
      }
      this.pending = false;
      if (b === CTRL_A) out.push(CTRL_A);
      else if (b === 0x78 || b === 0x58) commands.push("quit"); // x / X
      else if (b === 0x63 || b === 0x43) commands.push("monitor"); // c / C
    }
    return { forward: Uint8Array.from(out), commands };
  }
}
