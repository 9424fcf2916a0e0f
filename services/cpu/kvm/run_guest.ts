/**
 * Boots a KVM guest with the console on this process's stdin/stdout (raw mode on a tty) and
 * returns how it ended: the body of `vmesh boot --accel kvm`.
 */
import { type KvmExit, KvmMachine } from "./kvm_machine.ts";
import type { VirtioDevice } from "../virtio/mod.ts";

/** Options of runKvmGuest. */
export interface RunKvmGuestOptions {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  memoryBytes: number;
  /** Forward stdin to the UART (interactive shell). */
  interactive: boolean;
  /** Virtio devices (virtio-mmio windows, see virtio_mmio_x86.ts). */
  virtio?: VirtioDevice[];
  /** Console output sink (default: stdout). */
  onConsole?: (bytes: Uint8Array) => void;
}

/** Runs the guest to its end. */
export async function runKvmGuest(opts: RunKvmGuestOptions): Promise<KvmExit> {
  const onConsole = opts.onConsole ?? ((b: Uint8Array) => Deno.stdout.writeSync(b));
  const vm = new KvmMachine({ ...opts, onConsole });
  let reading = false;
  const raw = opts.interactive && Deno.stdin.isTerminal();
  try {
    if (opts.interactive) {
      reading = true;
      if (raw) Deno.stdin.setRaw(true);
      (async () => {
        let pending = new Uint8Array(0);
        const buf = new Uint8Array(1024);
        while (reading) {
          const n = await Deno.stdin.read(buf).catch(() => null);
          if (n === null) break;
          const merged = new Uint8Array(pending.length + n);
          merged.set(pending);
          merged.set(buf.subarray(0, n), pending.length);
          // Ctrl-A x quits, as QEMU's -nographic does.
          const quit = merged.findIndex((b, i) => b === 1 && merged[i + 1] === 0x78);
          if (quit >= 0) {
            vm.stop("quit from the console (Ctrl-A x)");
            break;
          }
          let taken = vm.input(merged);
          while (taken < merged.length && reading) {
            await new Promise((r) => setTimeout(r, 5));
            taken += vm.input(merged.subarray(taken));
          }
          pending = new Uint8Array(0);
        }
      })();
    }
    return await vm.run();
  } finally {
    reading = false;
    if (raw) Deno.stdin.setRaw(false);
    vm.close();
  }
}
