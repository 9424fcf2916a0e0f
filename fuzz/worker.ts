/**
 * A fuzz worker: runs inputs [start, end) of one target until a deadline, publishing how far it
 * got in shared memory after every input, so the parent can see a hang (an input that never
 * finishes, even a synchronous loop) and end the worker.
 */
import { targetNamed } from "./mod.ts";
import { inputAt, runInput } from "./run_input.ts";

/** What the parent asks of a worker. */
export interface WorkOrder {
  target: string;
  seed: number;
  start: number;
  end: number;
  /** Epoch ms after which no new input starts. */
  until: number;
  limitMs: number;
  /** Int32Array: [started, finished, accepted, rejected], counted from `start`. */
  progress: SharedArrayBuffer;
}

/** What a worker reports. */
export type WorkerReport =
  | { type: "failure"; index: number; kind: string; error: string; input: Uint8Array }
  | { type: "done" };

/** Progress slots. */
export const enum Slot {
  Started,
  Finished,
  Accepted,
  Rejected,
}

const self = globalThis as unknown as {
  onmessage: (e: MessageEvent<WorkOrder>) => void;
  postMessage(m: WorkerReport): void;
};

self.onmessage = async (e) => {
  const o = e.data;
  const p = new Int32Array(o.progress);
  const target = targetNamed(o.target);
  await target.init?.();
  for (let n = 0; o.start + n < o.end && Date.now() < o.until; n++) {
    const index = o.start + n;
    const input = inputAt(target, o.seed, index);
    Atomics.store(p, Slot.Started, n + 1);
    const r = await runInput(target, input, o.limitMs);
    if (r.ok) Atomics.add(p, r.outcome === "accepted" ? Slot.Accepted : Slot.Rejected, 1);
    else self.postMessage({ type: "failure", index, kind: r.kind, error: r.error, input });
    Atomics.store(p, Slot.Finished, n + 1);
  }
  self.postMessage({ type: "done" });
};
