/**
 * virtio-rng (virtio 1.2, section 5.4): fills the driver's writable buffers from the VM's
 * entropy source, which is injectable so that a run can be made deterministic and replayed.
 */

import { configMiss, type VirtioDevice, VirtioDeviceId, type VirtioHost } from "./device.ts";
import { DescriptorChain } from "./virtqueue.ts";

/** Fills `dst` with entropy. */
export type EntropySource = (dst: Uint8Array) => void;

/** The host's cryptographic generator (`crypto.getRandomValues`, 64 KiB per call). */
export const cryptoEntropy: EntropySource = (dst) => {
  for (let o = 0; o < dst.length; o += 65536) {
    crypto.getRandomValues(dst.subarray(o, Math.min(dst.length, o + 65536)));
  }
};

/** Most bytes answered per request; a larger buffer is filled partly (used length says so). */
const MAX_REQUEST = 65536;

/** Options of a virtio-rng device. */
export interface VirtioRngOptions {
  /** Entropy source; `cryptoEntropy` by default. */
  entropy?: EntropySource;
  /** Queue size until the driver picks one, 8 by default (QEMU's virtio-rng). */
  queueSize?: number;
}

/** The virtio entropy device: one request queue, no features, no config space. */
export class VirtioRng implements VirtioDevice {
  readonly deviceId = VirtioDeviceId.ENTROPY;
  readonly features: readonly [number, number] = [0, 0];
  readonly numQueues = 1;
  readonly queueSize: number;
  /** Bytes handed to the guest so far. */
  bytesServed = 0;

  private host!: VirtioHost;
  private readonly entropy: EntropySource;
  private readonly chain = new DescriptorChain();
  private readonly scratch = new Uint8Array(MAX_REQUEST);

  constructor(options: VirtioRngOptions = {}) {
    this.entropy = options.entropy ?? cryptoEntropy;
    this.queueSize = options.queueSize ?? 8;
  }

  /** Called by the transport. */
  attach(host: VirtioHost): void {
    this.host = host;
  }

  /** No config space: every read is a miss (all ones). */
  readConfig(_offset: number, size: 1 | 2 | 4): number {
    return configMiss(size);
  }

  /** No config space. */
  writeConfig(): void {}

  /** Serves every pending request on the queue. */
  queueNotify(index: number): void {
    if (index !== 0) return;
    const q = this.host.queue(0);
    const chain = this.chain;
    let pushed = false;
    while (q.pop(chain)) {
      const n = Math.min(chain.writableBytes, MAX_REQUEST);
      const buf = this.scratch.subarray(0, n);
      this.entropy(buf);
      chain.write(this.host.memory, 0, buf);
      q.push(chain.head, n);
      this.bytesServed += n;
      pushed = true;
    }
    if (pushed) this.host.signalUsed(0);
  }

  /** Nothing is in flight. */
  reset(): void {}

  /** Statistics only. */
  save(): { bytesServed: number } {
    return { bytesServed: this.bytesServed };
  }

  /** Restores statistics. */
  load(state: unknown): void {
    const s = state as { bytesServed?: number } | undefined;
    this.bytesServed = s?.bytesServed ?? 0;
  }
}
