/**
 * The minimal x86-64 guest kernel: Debian's linux-source-6.1 with `tinyconfig` and the
 * committed fragment guest/x86/kernel.config, built with the host gcc (make target `vmlinux`:
 * the KVM engine loads the ELF, so no bzImage decompressor runs in the guest). Cached as
 * `<cache>/x86-kernel-<key>/vmlinux`, the key a hash of the fragment, the build code's revision
 * and the linux-source-6.1 and gcc package versions.
 */
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { defaultCacheDir } from "../build.ts";
import { buildKernel, KERNEL_TARBALL, type KernelTarget } from "../kernel_build.ts";
import { ensurePackages } from "../debian.ts";
import type { Reporter } from "../step_runner.ts";

/** The committed config fragment merged over tinyconfig. */
export const X86_KERNEL_FRAGMENT = fileURLToPath(new URL("./kernel.config", import.meta.url));
/** Bump when the build steps change what they produce. */
export const X86_KERNEL_REVISION = 1;
/** A native x86-64 build of the ELF vmlinux. */
export const X86_KERNEL: KernelTarget = {
  makeVars: ["ARCH=x86_64"],
  target: "vmlinux",
  image: "vmlinux",
};

/** The cached minimal kernel. */
export interface X86Kernel {
  dir: string;
  /** The ELF vmlinux (PVH note for QEMU, startup_64 entry for the KVM engine). */
  vmlinux: string;
  /** The .config it was built with. */
  config: string;
  key: string;
}

async function packageVersion(pkg: string): Promise<string> {
  const out = await new Deno.Command("dpkg-query", {
    args: ["-W", "-f", "${Version}", pkg],
    stdout: "piped",
    stderr: "null",
  }).output();
  const v = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !v) {
    throw new Error(`Debian package ${pkg} is not installed: run ./vmesh (it installs it)`);
  }
  return v;
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** The cache key of the minimal kernel. */
export async function x86KernelKey(): Promise<string> {
  const fragment = await Deno.readFile(X86_KERNEL_FRAGMENT);
  const inputs = JSON.stringify({
    revision: X86_KERNEL_REVISION,
    fragment: createHash("sha256").update(fragment).digest("hex"),
    "linux-source-6.1": await packageVersion("linux-source-6.1"),
    gcc: await packageVersion("gcc"),
    "libelf-dev": await packageVersion("libelf-dev"),
  });
  return createHash("sha256").update(inputs).digest("hex").slice(0, 16);
}

/**
 * Returns the cached minimal kernel, building it first if needed (a few minutes on 2 cores;
 * the build log is `<dir>.log`). Written whole or not at all.
 */
export async function ensureX86Kernel(
  cacheDir = defaultCacheDir(),
  report: Reporter = (l) => console.error(`vmesh guest: ${l}`),
): Promise<X86Kernel> {
  await Deno.mkdir(`${cacheDir}/logs`, { recursive: true });
  // linux-source-6.1, gcc, libelf-dev and the other build tools, installed when missing.
  await ensurePackages(`${cacheDir}/logs/setup.log`, report);
  if (!await exists(KERNEL_TARBALL)) {
    throw new Error(`${KERNEL_TARBALL} is missing: apt-get install linux-source-6.1`);
  }
  const key = await x86KernelKey();
  const dir = `${cacheDir}/x86-kernel-${key}`;
  const kernel = { dir, vmlinux: `${dir}/vmlinux`, config: `${dir}/config`, key };
  if (await exists(kernel.vmlinux)) return kernel;
  const work = `${dir}.tmp-${Deno.pid}`;
  await Deno.mkdir(work, { recursive: true });
  try {
    const built = await buildKernel({
      kernel: X86_KERNEL,
      workDir: work,
      fragmentPath: X86_KERNEL_FRAGMENT,
      logPath: `${dir}.log`,
      report,
      jobs: availableParallelism(),
    });
    const out = `${work}/out`;
    await Deno.mkdir(out);
    await Deno.copyFile(built, `${out}/vmlinux`);
    await Deno.copyFile(`${work}/linux-source-6.1/.config`, `${out}/config`);
    // Another process may have finished the same build meanwhile: its copy is as good.
    await Deno.rename(out, dir).catch(async (e) => {
      if (!await exists(kernel.vmlinux)) throw e;
    });
    return kernel;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  console.log(JSON.stringify(await ensureX86Kernel(), null, 2));
}
