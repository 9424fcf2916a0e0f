/**
 * Builds and caches the guest images: `.vmesh/guest/<key>/{Image, initramfs.cpio.gz,
 * data.ext4, fw_jump.bin, manifest.json}`, keyed by the recipe hash. Everything is made in
 * a scratch directory and renamed into place at the end, so a failed build leaves no entry.
 */

import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { buildBusybox } from "./busybox_build.ts";
import { buildDataDisk, DataDiskInfo } from "./data_disk.ts";
import {
  busyboxSourceVersion,
  ensurePackages,
  installedVersions,
  RECIPE_PACKAGES,
} from "./debian.ts";
import { encodeCpio, gzipArchive, initramfsEntries } from "./initramfs.ts";
import { buildKernel } from "./kernel_build.ts";
import { RECIPE_DIR, RecipeInputs, recipeKey } from "./recipe_hash.ts";
import { formatElapsed, logTail, Reporter, StepError } from "./step_runner.ts";

/** OpenSBI's generic fw_jump firmware from Debian's opensbi package. */
export const OPENSBI_FW_JUMP = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";

/** Absolute paths of one cached set of guest images. */
export interface GuestImages {
  /** The recipe hash (cache key). */
  key: string;
  /** The cache entry directory. */
  dir: string;
  /** Linux kernel `Image` (riscv64, loaded at 0x80200000 by fw_jump). */
  kernel: string;
  /** gzip newc initramfs with busybox and /init. */
  initramfs: string;
  /** ext4 data disk image (raw). */
  disk: string;
  /** OpenSBI fw_jump.bin (the -bios firmware). */
  firmware: string;
  /** manifest.json: recipe inputs, versions, sizes, build times, data disk content. */
  manifest: string;
}

/** The manifest.json written into each cache entry. */
export interface GuestManifest {
  key: string;
  recipe: RecipeInputs;
  builtAt: string;
  kernelVersion: string;
  busyboxVersion: string;
  /** Seconds per build step. */
  buildSeconds: Record<string, number>;
  /** Bytes per image file. */
  sizes: Record<string, number>;
  /** sha256 per image file (the builds are meant to be reproducible). */
  sha256: Record<string, string>;
  data: DataDiskInfo;
}

/** Options for {@link ensureGuestImages}. */
export interface EnsureGuestOptions {
  /** Cache root (default: `<repo>/.vmesh/guest`). */
  cacheDir?: string;
  /** Rebuild even if the entry exists. */
  force?: boolean;
  /** Progress lines (default: stderr). */
  report?: Reporter;
  /** make -j (default: number of CPUs). */
  jobs?: number;
  /** Recipe directory (default: guest/recipe/); tests point it at a broken copy. */
  recipeDir?: string;
}

const FILES = {
  kernel: "Image",
  initramfs: "initramfs.cpio.gz",
  disk: "data.ext4",
  firmware: "fw_jump.bin",
  manifest: "manifest.json",
} as const;

/** The default cache root, `<repo>/.vmesh/guest`. */
export function defaultCacheDir(): string {
  return fileURLToPath(new URL("../.vmesh/guest", import.meta.url));
}

function imagesIn(dir: string, key: string): GuestImages {
  return {
    key,
    dir,
    kernel: `${dir}/${FILES.kernel}`,
    initramfs: `${dir}/${FILES.initramfs}`,
    disk: `${dir}/${FILES.disk}`,
    firmware: `${dir}/${FILES.firmware}`,
    manifest: `${dir}/${FILES.manifest}`,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function stderrReporter(line: string) {
  console.error(`vmesh guest: ${line}`);
}

/** The cache key for the current recipe and installed packages (installs packages if missing). */
export async function currentKey(
  cacheDir: string,
  logPath: string,
  report: Reporter,
  recipeDir = fileURLToPath(RECIPE_DIR),
): Promise<{ key: string; inputs: RecipeInputs }> {
  let versions = await installedVersions(RECIPE_PACKAGES);
  if (versions.size < RECIPE_PACKAGES.length) {
    await ensurePackages(logPath, report);
    versions = await installedVersions(RECIPE_PACKAGES);
  }
  const packages: Record<string, string> = Object.fromEntries(versions);
  packages["busybox (source)"] = await busyboxSourceVersion(
    `${cacheDir}/busybox-source.json`,
    logPath,
    report,
  );
  return await recipeKey(recipeDir, packages);
}

/** Takes `<key>.lock` (waiting while a live process holds it); returns its release. */
async function lock(cacheDir: string, key: string, report: Reporter): Promise<() => void> {
  const path = `${cacheDir}/${key}.lock`;
  let waited = false;
  for (;;) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      await f.write(new TextEncoder().encode(`${Deno.pid}\n`));
      f.close();
      return () => {
        try {
          Deno.removeSync(path);
        } catch { /* already gone */ }
      };
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    const pid = Number((await Deno.readTextFile(path).catch(() => "")).trim());
    // An empty lock may be one another process has created but not yet written.
    const age = Date.now() - ((await Deno.stat(path).catch(() => null))?.mtime?.getTime() ?? 0);
    if ((!pid && age > 10_000) || (pid && !(await exists(`/proc/${pid}`)))) {
      await Deno.remove(path).catch(() => {});
      continue;
    }
    if (!waited) report(`waiting for another build of ${key} (pid ${pid})`);
    waited = true;
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/**
 * Returns the cached guest images for the current recipe, building them first if needed
 * (5–10 minutes on 2 cores). With a warm cache it only hashes the recipe (~0.2 s).
 */
export async function ensureGuestImages(opts: EnsureGuestOptions = {}): Promise<GuestImages> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const report = opts.report ?? stderrReporter;
  await Deno.mkdir(`${cacheDir}/logs`, { recursive: true });
  const setupLog = `${cacheDir}/logs/setup.log`;
  const recipeDir = opts.recipeDir ?? fileURLToPath(RECIPE_DIR);
  const { key, inputs } = await currentKey(cacheDir, setupLog, report, recipeDir);
  const dir = `${cacheDir}/${key}`;
  if (!opts.force && await exists(`${dir}/${FILES.manifest}`)) return imagesIn(dir, key);
  const release = await lock(cacheDir, key, report);
  try {
    // Another process may have finished the same build while we waited for the lock.
    if (!opts.force && await exists(`${dir}/${FILES.manifest}`)) return imagesIn(dir, key);
    await build(cacheDir, recipeDir, key, inputs, opts.jobs ?? availableParallelism(), report);
    return imagesIn(dir, key);
  } finally {
    release();
  }
}

async function build(
  cacheDir: string,
  recipe: string,
  key: string,
  inputs: RecipeInputs,
  jobs: number,
  report: Reporter,
): Promise<void> {
  const scratch = `${cacheDir}/.build-${key}-${Deno.pid}`;
  const out = `${scratch}/out`;
  const logDir = `${cacheDir}/logs/${key}`;
  await removeStaleScratch(cacheDir);
  await Deno.mkdir(out, { recursive: true });
  await Deno.mkdir(`${scratch}/kernel`, { recursive: true });
  await Deno.mkdir(`${scratch}/busybox`, { recursive: true });
  await Deno.mkdir(logDir, { recursive: true });
  const started = Date.now();
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    report(`${name}…`);
    const r = await f();
    seconds[name] = Math.round((Date.now() - t0) / 100) / 10;
    report(`${name} done in ${formatElapsed(Date.now() - t0)}`);
    return r;
  };
  report(`building guest images ${key} (logs in ${logDir})`);
  try {
    await ensurePackages(`${logDir}/setup.log`, report);
    const image = await timed("kernel", () =>
      buildKernel({
        workDir: `${scratch}/kernel`,
        fragmentPath: `${recipe}/kernel.config`,
        logPath: `${logDir}/kernel.log`,
        report,
        jobs,
      }));
    await Deno.copyFile(image, `${out}/${FILES.kernel}`);
    const kernelVersion = await kernelRelease(`${scratch}/kernel/linux-source-6.1`);
    await Deno.remove(`${scratch}/kernel`, { recursive: true });
    const busybox = await timed("busybox", () =>
      buildBusybox({
        workDir: `${scratch}/busybox`,
        fragmentPath: `${recipe}/busybox.config`,
        logPath: `${logDir}/busybox.log`,
        report,
        jobs,
      }));
    await timed("initramfs", async () => {
      const entries = initramfsEntries(
        await Deno.readFile(busybox.binary),
        busybox.links,
        await Deno.readFile(`${recipe}/init`),
        await Deno.readFile(`${recipe}/udhcpc.script`),
      );
      await Deno.writeFile(`${out}/${FILES.initramfs}`, gzipArchive(encodeCpio(entries)));
    });
    const data = await timed("data disk", () =>
      buildDataDisk({
        recipeDataDir: `${recipe}/data`,
        stageDir: `${scratch}/data`,
        imagePath: `${out}/${FILES.disk}`,
        logPath: `${logDir}/data.log`,
        report,
      }));
    try {
      await Deno.copyFile(OPENSBI_FW_JUMP, `${out}/${FILES.firmware}`);
    } catch (e) {
      throw new StepError("firmware", `cannot copy ${OPENSBI_FW_JUMP}: ${(e as Error).message}`);
    }
    const sizes: Record<string, number> = {};
    const sha256: Record<string, string> = {};
    for (const f of [FILES.kernel, FILES.initramfs, FILES.disk, FILES.firmware]) {
      const bytes = await Deno.readFile(`${out}/${f}`);
      sizes[f] = bytes.length;
      sha256[f] = createHash("sha256").update(bytes).digest("hex");
    }
    const manifest: GuestManifest = {
      key,
      recipe: inputs,
      builtAt: new Date().toISOString(),
      kernelVersion,
      busyboxVersion: busybox.version,
      buildSeconds: { ...seconds, total: Math.round((Date.now() - started) / 100) / 10 },
      sizes,
      sha256,
      data,
    };
    await Deno.writeTextFile(`${out}/${FILES.manifest}`, JSON.stringify(manifest, null, 2) + "\n");
    const dir = `${cacheDir}/${key}`;
    // --force: move the old entry aside first, since rename cannot replace a directory.
    if (await exists(dir)) await Deno.rename(dir, `${scratch}/old`);
    await Deno.rename(out, dir);
    report(`guest images ready in ${formatElapsed(Date.now() - started)}: ${dir}`);
  } catch (e) {
    if (e instanceof StepError && e.logPath) {
      const tail = await logTail(e.logPath);
      if (tail) report(`last lines of ${e.logPath}:\n${tail}`);
    }
    throw e;
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
  }
}

/** Removes scratch directories left by builds whose process is gone (killed mid-build). */
async function removeStaleScratch(cacheDir: string): Promise<void> {
  for await (const e of Deno.readDir(cacheDir)) {
    const m = /^\.build-[0-9a-f]+-(\d+)$/.exec(e.name);
    if (!m || (Number(m[1]) !== Deno.pid && await exists(`/proc/${m[1]}`))) continue;
    await Deno.remove(`${cacheDir}/${e.name}`, { recursive: true }).catch(() => {});
  }
}

/** `make kernelrelease`'s answer without running make: include/config/kernel.release. */
async function kernelRelease(src: string): Promise<string> {
  try {
    return (await Deno.readTextFile(`${src}/include/config/kernel.release`)).trim();
  } catch {
    return "6.1";
  }
}
