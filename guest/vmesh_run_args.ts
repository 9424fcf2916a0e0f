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
  /** `--timeout` in seconds (none when absent). */
  timeoutS?: number;
  /** RAM (`-m`), default 256M. */
  memory?: string;
  /** Extra kernel command line after `console=ttyS0`. */
  append?: string;
  /** More `vmesh run` flags (before the kernel), e.g. `["--record", "run.log"]`. */
  extra?: string[];
}

/**
 * argv after `./vmesh` for booting the images (256 MiB of RAM and `console=ttyS0` by default).
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
    o.memory ?? "256M",
    "--bios",
    images.firmware,
    "--initrd",
    images.initramfs,
    "--append",
    `console=ttyS0${o.append ? " " + o.append : ""}`,
    ...(o.timeoutS !== undefined ? ["--timeout", String(o.timeoutS)] : []),
    ...(o.extra ?? []),
    images.kernel,
  ];
}

/**
 * The `--bios/--kernel/--initrd` flags naming the images, for `./vmesh boot` and the CPU service.
 *
 * @example
 * ```ts
 * // ["boot", ...imageArgs(images), "--", "uname -a"]
 * ```
 */
export function imageArgs(images: GuestImages): string[] {
  return ["--bios", images.firmware, "--kernel", images.kernel, "--initrd", images.initramfs];
}
