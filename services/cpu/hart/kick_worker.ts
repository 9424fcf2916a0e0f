/**
 * Test helper for hart_kick_test.ts: a Worker that receives the guest's shared memory, waits
 * `delayMs`, then kicks hart 0 through its own GuestMemory over the same bytes.
 */
import { GuestMemory } from "../guest_memory.ts";

declare const self: {
  onmessage: (e: MessageEvent) => void;
  postMessage: (m: unknown) => void;
};

self.onmessage = (e: MessageEvent) => {
  const { memory, ramSize, delayMs } = e.data as {
    memory: WebAssembly.Memory;
    ramSize: number;
    delayMs: number;
  };
  const mem = new GuestMemory(ramSize, memory);
  self.postMessage("ready");
  setTimeout(() => {
    mem.kick(0);
    self.postMessage("kicked");
  }, delayMs);
};
