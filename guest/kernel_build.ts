/**
 * Builds the guest Linux kernel `Image` from Debian's linux-source-6.1 tarball:
 * `tinyconfig` + the committed fragment guest/recipe/kernel.config, cross-built for riscv64.
 */

import { Reporter, runStep, StepError } from "./step_runner.ts";

/** Where Debian's linux-source-6.1 package puts the kernel tarball. */
export const KERNEL_TARBALL = "/usr/src/linux-source-6.1.tar.xz";
/** Make variables for the cross build. */
export const KERNEL_MAKE_VARS = ["ARCH=riscv", "CROSS_COMPILE=riscv64-linux-gnu-"];
/** Fixed build identity, so the same recipe gives the same `Image` bytes on any host. */
export const KERNEL_BUILD_ENV: Record<string, string> = {
  KBUILD_BUILD_TIMESTAMP: "Thu Jan  1 00:00:00 UTC 1970",
  KBUILD_BUILD_USER: "vmesh",
  KBUILD_BUILD_HOST: "vmesh",
  KBUILD_BUILD_VERSION: "1",
};

/** Which kernel to build: make variables, make target and the image it leaves. */
export interface KernelTarget {
  makeVars: string[];
  /** make target, e.g. `Image` or `vmlinux`. */
  target: string;
  /** The built image, relative to the source tree. */
  image: string;
}

/** The RISC-V guest kernel (the default of {@link buildKernel}). */
export const RISCV_KERNEL: KernelTarget = {
  makeVars: KERNEL_MAKE_VARS,
  target: "Image",
  image: "arch/riscv/boot/Image",
};

/** Options for {@link buildKernel}. */
export interface KernelBuildOptions {
  /** Architecture and image (default {@link RISCV_KERNEL}). */
  kernel?: KernelTarget;
  /** Scratch directory; the source tree is unpacked here. */
  workDir: string;
  /** The config fragment merged over tinyconfig. */
  fragmentPath: string;
  /** Build log (appended). */
  logPath: string;
  report: Reporter;
  /** make -j value. */
  jobs: number;
}

/** Config lines the fragment asks for: `CONFIG_X=v` or `# CONFIG_X is not set`. */
export function fragmentSettings(text: string): Map<string, string> {
  const wanted = new Map<string, string>();
  for (const line of text.split("\n")) {
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    if (set) wanted.set(set[1], set[2]);
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line.trim());
    if (unset) wanted.set(unset[1], "n");
  }
  return wanted;
}

/** Fragment settings that the final .config does not honour (a dependency is missing). */
export function unmetSettings(fragment: string, config: string): string[] {
  const have = fragmentSettings(config);
  const bad: string[] = [];
  for (const [k, v] of fragmentSettings(fragment)) {
    const got = have.get(k) ?? "n";
    if (got !== v) bad.push(`${k}=${v} (got ${got})`);
  }
  return bad;
}

/** Unpacks, configures and builds; returns the path of the built image. */
export async function buildKernel(o: KernelBuildOptions): Promise<string> {
  const k = o.kernel ?? RISCV_KERNEL;
  const step = (name: string) => `kernel: ${name}`;
  await runStep({
    name: step("unpack linux-source-6.1"),
    cmd: ["tar", "-xf", KERNEL_TARBALL, "-C", o.workDir],
    logPath: o.logPath,
    report: o.report,
  });
  const src = `${o.workDir}/linux-source-6.1`;
  const make = (target: string[], name: string, unit?: RegExp) =>
    runStep({
      name: step(name),
      cmd: ["make", ...k.makeVars, ...target],
      cwd: src,
      env: KERNEL_BUILD_ENV,
      logPath: o.logPath,
      report: o.report,
      unit,
    });
  await make(["tinyconfig"], "make tinyconfig");
  await runStep({
    name: step("merge kernel.config"),
    cmd: ["scripts/kconfig/merge_config.sh", "-m", ".config", o.fragmentPath],
    cwd: src,
    env: Object.fromEntries(k.makeVars.map((v) => v.split("=", 2))),
    logPath: o.logPath,
    report: o.report,
  });
  await make(["olddefconfig"], "make olddefconfig");
  const unmet = unmetSettings(
    await Deno.readTextFile(o.fragmentPath),
    await Deno.readTextFile(`${src}/.config`),
  );
  if (unmet.length > 0) {
    throw new StepError(
      step("check .config"),
      `kernel.config settings not honoured (missing dependency?): ${unmet.join(", ")}`,
      o.logPath,
    );
  }
  await make([`-j${o.jobs}`, k.target], `make ${k.target}`, /^\s+(CC|AS)\s/);
  return `${src}/${k.image}`;
}
