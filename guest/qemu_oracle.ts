/**
 * Boots the guest images under `qemu-system-riscv64 -M virt` (the oracle vmesh is measured
 * against): the command line, and a batch run that returns the console output.
 */

import type { GuestImages } from "./build.ts";
import { batchCmdlineParam, GUEST_READY_MARKER, parseBatchOutput } from "./guest_protocol.ts";
import { spawnWithDeadline } from "./spawn_with_deadline.ts";

/** Options for {@link qemuArgs}. */
export interface QemuOptions {
  /** Extra kernel command line after `console=ttyS0`. */
  append?: string;
  memMiB?: number;
  smp?: number;
  /** Attach data.ext4 as virtio-blk (default true). */
  disk?: boolean;
  /** Attach a user-mode virtio-net (default true). */
  net?: boolean;
  /** More QEMU arguments, e.g. ["-device", "virtio-rng-device"]. */
  extra?: string[];
}

/** argv (without the qemu binary) for booting the images on the virt board. */
export function qemuArgs(images: GuestImages, o: QemuOptions = {}): string[] {
  const args = [
    "-M",
    "virt",
    "-m",
    `${o.memMiB ?? 256}M`,
    "-smp",
    String(o.smp ?? 1),
    "-nographic",
    "-no-reboot",
    "-bios",
    images.firmware,
    "-kernel",
    images.kernel,
    "-initrd",
    images.initramfs,
    "-append",
    `console=ttyS0${o.append ? " " + o.append : ""}`,
  ];
  if (o.disk ?? true) {
    // snapshot=on: guests may write, the cached image stays as built.
    args.push("-drive", `file=${images.disk},if=none,format=raw,id=d0,snapshot=on`);
    args.push("-device", "virtio-blk-device,drive=d0");
  }
  if (o.net ?? true) {
    args.push("-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0");
  }
  return [...args, ...(o.extra ?? [])];
}

/** Result of {@link runQemuBatch}. */
export interface QemuBatchResult {
  /** Everything QEMU wrote to the console. */
  console: string;
  /** The command's output (between the batch markers), or null if it never completed. */
  output: string | null;
  /** The command's exit status in the guest, or null. */
  status: number | null;
  /** QEMU's own exit code (0 after the guest powers off), or null if killed on timeout. */
  qemuExit: number | null;
  /** Milliseconds from spawning QEMU to the init-ready marker on the console, or null. */
  readyMs: number | null;
}

/** Boots the images in batch mode with `command`, waits for power-off (or the timeout). */
export async function runQemuBatch(
  images: GuestImages,
  command: string,
  o: QemuOptions & { timeoutMs?: number; qemu?: string } = {},
): Promise<QemuBatchResult> {
  const append = [o.append ?? "quiet", batchCmdlineParam(command)].join(" ");
  const t0 = performance.now();
  const run = spawnWithDeadline(
    o.qemu ?? "qemu-system-riscv64",
    qemuArgs(images, { ...o, append }),
    o.timeoutMs ?? 60_000,
  );
  const child = run.child;
  let text = "";
  let readyMs: number | null = null;
  const dec = new TextDecoder();
  const readOut = async () => {
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk, { stream: true });
      if (readyMs === null && text.includes(GUEST_READY_MARKER)) readyMs = performance.now() - t0;
    }
  };
  const errText = new Response(child.stderr).text();
  const [, status, err] = await Promise.all([readOut(), child.status, errText]);
  run.clear();
  const parsed = parseBatchOutput(text);
  return {
    console: text + err,
    output: parsed?.output ?? null,
    status: parsed?.status ?? null,
    qemuExit: run.timedOut ? null : status.code,
    readyMs,
  };
}
