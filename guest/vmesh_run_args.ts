/**
 * The `./vmesh run` arguments that boot the guest images in one process (no bus, no data
 * disk): the vmesh twin of `qemuArgs`, used by the benchmarks.
 */

import type { GuestImages } from "./build.ts";

/** Options for {@link vmeshRunArgs}. */
export interface VmeshRunOptions {
  /** `--engine` (default: the CLI's default). */
  engine?: string;
  /** `--smp` (default 1). */
  smp?: number;
  /** `--timeout` in seconds. */
  timeoutS: number;
}

/**
 * argv after `./vmesh` for booting the images with 256 MiB of RAM and `console=ttyS0`.
 *
 * @example
 * ```ts
 * // new Deno.Command("./vmesh", { args: vmeshRunArgs(images, { smp: 2, timeoutS: 300 }) })
 * ```
 */
export function vmeshRunArgs(images: GuestImages, o: VmeshRunOptions): string[] {
  return [
    "run",
    ...(o.engine ? ["--engine", o.engine] : []),
    ...(o.smp ? ["--smp", String(o.smp)] : []),
    "-m",
    "256M",
    "--bios",
    images.firmware,
    "--initrd",
    images.initramfs,
    "--append",
    "console=ttyS0",
    "--timeout",
    String(o.timeoutS),
    images.kernel,
  ];
}
