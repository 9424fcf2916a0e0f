/**
 * What `./vmesh boot` reads from the VM's console stream (`vmesh.<vm>.console.out`): the
 * text (for batch mode's output) and how far the guest got, from markers in the output
 * (OpenSBI's banner, the kernel's first line, the guest /init's lines).
 */

import { type Bus, type BusSubscription, consoleMsgs, consoleSubject } from "@vmesh/bus";
import { GUEST_PROMPT, GUEST_READY_MARKER, GUEST_SHELL_MARKER } from "../guest/mod.ts";

/** Boot stages in order, each with the console text that shows it was reached. */
export const BOOT_MILESTONES: readonly { marker: string; stage: string }[] = [
  { marker: "OpenSBI v", stage: "the firmware (OpenSBI) started" },
  { marker: "Linux version", stage: "the Linux kernel started" },
  { marker: "Run /init", stage: "the kernel started /init" },
  { marker: GUEST_READY_MARKER, stage: "the guest's /init is running" },
  { marker: GUEST_SHELL_MARKER, stage: "the busybox shell started" },
  { marker: GUEST_PROMPT, stage: "the shell prompt appeared" },
];

/** Collects a VM's console output from the bus. */
export class ConsoleCapture {
  /** All text so far (bounded by `maxChars`: older text is dropped). */
  text = "";
  /** Index into BOOT_MILESTONES of the furthest stage seen (-1: none). */
  reached = -1;
  /** Bytes seen. */
  bytes = 0;
  #sub: BusSubscription;
  #decoder = new TextDecoder();

  constructor(
    bus: Bus,
    vm: string,
    readonly onMilestone?: (stage: string) => void,
    readonly maxChars = 4 << 20,
  ) {
    this.#sub = bus.subscribe(consoleMsgs.byteBatch, consoleSubject(vm, "out"), (b) => {
      this.add(b.data);
    });
  }

  /** Appends output and reports newly reached milestones. */
  add(data: Uint8Array): void {
    this.bytes += data.length;
    const before = this.text.length;
    this.text += this.#decoder.decode(data, { stream: true });
    if (this.text.length > this.maxChars) this.text = this.text.slice(-this.maxChars);
    // Search only the new text plus an overlap as long as the longest marker.
    const from = Math.max(0, Math.min(before, this.text.length) - 64);
    const fresh = this.text.slice(from);
    for (let i = this.reached + 1; i < BOOT_MILESTONES.length; i++) {
      if (!fresh.includes(BOOT_MILESTONES[i].marker)) continue;
      this.reached = i;
      this.onMilestone?.(BOOT_MILESTONES[i].stage);
    }
  }

  /** The furthest stage reached, as a sentence fragment. */
  get furthest(): string {
    if (this.reached >= 0) return BOOT_MILESTONES[this.reached].stage;
    return this.bytes > 0
      ? "console output, but none of the firmware's, kernel's or init's markers"
      : "no console output from the guest";
  }

  /** The last `n` non-empty lines of output. */
  lastLines(n: number): string[] {
    return this.text.replaceAll("\r", "").split("\n").filter((l) => l.trim() !== "").slice(-n);
  }

  /** Stops listening. */
  close(): void {
    this.#sub.unsubscribe();
  }
}
