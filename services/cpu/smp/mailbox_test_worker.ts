/**
 * A Worker for mailbox_test.ts, as a hart: role "writer" posts `n` stores of 1..n to one
 * address and raises a flag after each (a lock release in shared memory); role "reader" waits
 * for each flag value and then loads the address (as the next lock holder would), and says so.
 */
import { MailboxBus } from "./mailbox.ts";

/** What the Worker is started with. */
export interface MailboxWorkerStart {
  role: "writer" | "reader";
  hart: number;
  mailbox: SharedArrayBuffer;
  /** Int32 word 0: the writer's flag (stores posted so far); word 1: the reader's (loads done). */
  flags: SharedArrayBuffer;
  n: number;
  addr: number;
}

/** Waits until word `at` of `flags` reaches `want`. */
function waitFor(flags: Int32Array, at: number, want: number): void {
  for (let f = Atomics.load(flags, at); f < want; f = Atomics.load(flags, at)) {
    Atomics.wait(flags, at, f, 100);
  }
}

const self_ = globalThis as unknown as {
  onmessage: ((e: MessageEvent<MailboxWorkerStart>) => void) | null;
  postMessage(m: unknown): void;
};
self_.onmessage = (e) => {
  const s = e.data;
  const bus = new MailboxBus(s.mailbox, s.hart, [[s.addr, s.addr + 4]]);
  const flags = new Int32Array(s.flags);
  const seen: number[] = [];
  for (let i = 1; i <= s.n; i++) {
    if (s.role === "writer") {
      bus.store(s.addr, 4, i);
      Atomics.store(flags, 0, i);
      Atomics.notify(flags, 0);
      // In step with the reader: its load and the next store are pending together.
      waitFor(flags, 1, i);
    } else {
      waitFor(flags, 0, i);
      seen.push(bus.load(s.addr, 4));
      Atomics.store(flags, 1, i);
      Atomics.notify(flags, 1);
    }
  }
  bus.drain();
  self_.postMessage(seen);
};
