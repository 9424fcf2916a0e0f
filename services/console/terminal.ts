/**
 * Terminal backend: guest output to stdout, keystrokes from stdin to the guest. When
 * stdin is a TTY it is put in raw mode, so keys (Ctrl-C too) go to the guest and
 * `Ctrl-A x` is the way out, as in QEMU's `-nographic`.
 * @module
 */

import type { ConsoleSink } from "./console_sink.ts";
import { type EscapeCommand, EscapeDecoder } from "./escape_keys.ts";

/** Callbacks the terminal reports keyboard input to. */
export interface TerminalInput {
  /** Bytes for the guest (escapes already removed). */
  keys(bytes: Uint8Array): void;
  /** An escape command (`Ctrl-A x` = quit, `Ctrl-A c` = monitor). */
  command(cmd: EscapeCommand): void;
}

/** The user's terminal as a console backend. */
export class TerminalSink implements ConsoleSink {
  readonly name = "terminal";
  readonly #decoder = new EscapeDecoder();
  #raw = false;
  #reading = false;

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) done += await Deno.stdout.write(bytes.subarray(done));
  }

  /**
   * Reads stdin until it ends or {@link close} is called, reporting keys and escape
   * commands. Raw mode is set only when stdin is a terminal.
   */
  async readInput(input: TerminalInput): Promise<void> {
    if (Deno.stdin.isTerminal()) {
      Deno.stdin.setRaw(true);
      this.#raw = true;
    }
    this.#reading = true;
    const buf = new Uint8Array(4096);
    try {
      while (this.#reading) {
        const n = await Deno.stdin.read(buf);
        if (n === null) break;
        const { forward, commands } = this.#decoder.feed(buf.subarray(0, n));
        if (forward.length > 0) input.keys(forward);
        for (const cmd of commands) input.command(cmd);
      }
    } catch (err) {
      // stdin closed under us (e.g. on shutdown) ends input; anything else is worth a line.
      if (!(err instanceof Deno.errors.BadResource) && !(err instanceof Deno.errors.Interrupted)) {
        console.error(`console: stdin: ${err instanceof Error ? err.message : err}`);
      }
    } finally {
      this.#restore();
    }
  }

  close(): Promise<void> {
    this.#reading = false;
    this.#restore();
    return Promise.resolve();
  }

  #restore(): void {
    if (!this.#raw) return;
    this.#raw = false;
    try {
      Deno.stdin.setRaw(false);
    } catch {
      // The terminal is gone; nothing left to restore.
    }
  }
}
