/**
 * Builds and caches the guest images: `.vmesh/guest/<key>/{Image, initramfs.cpio.gz,
 * data.ext4, fw_jump.bin, manifest.json}`, keyed by the recipe hash. Everything is made in
 * a scratch directory and renamed into place at the end, so a failed build leaves no entry.
 */

import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { buildBusybox } from "./busybox_build.ts";
import {
  clearBuildFailure,
  currentTestRun,
  EarlierBuildFailure,
  failureInRun,
  recordBuildFailure,
} from "./build_failure.ts";
import { buildDataDisk, DATA_DISK_MIB, DataDiskInfo } from "./data_disk.ts";
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
  /**
   * The `./vmesh test` run this build belongs to (default: `$VMESH_TEST_RUN`): a build that
   * failed in the same run is not tried again (see build_failure.ts).
   */
  testRun?: string;
}

const FILES = {
  kernel: "Image",
  initramfs: "initramfs.cpio.gz",
  disk: "data.ext4",
  firmware: "fw_jump.bin",
  manifest: "manifest.json",
} as const;

/** The environment variable that moves the cache root (tests use an empty one). */
export const GUEST_CACHE_ENV = "VMESH_GUEST_CACHE";

/** The default cache root: `$VMESH_GUEST_CACHE`, else `<repo>/.vmesh/guest`. */
export function defaultCacheDir(): string {
  return Deno.env.get(GUEST_CACHE_ENV) ||
    fileURLToPath(new URL("../.vmesh/guest", import.meta.url));
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
  const run = opts.testRun ?? currentTestRun();
  // Installing packages and finding the busybox source come before the key is known.
  const setupFailed = await failureInRun(cacheDir, SETUP_KEY, run);
  if (setupFailed) throw new EarlierBuildFailure(setupFailed);
  let key: string, inputs: RecipeInputs;
  try {
    ({ key, inputs } = await currentKey(cacheDir, setupLog, report, recipeDir));
  } catch (e) {
    await reportTail(e, report);
    await recordBuildFailure(cacheDir, SETUP_KEY, e, run);
    throw e;
  }
  const dir = `${cacheDir}/${key}`;
  if (!opts.force && await exists(`${dir}/${FILES.manifest}`)) return imagesIn(dir, key);
  const failedBefore = await failureInRun(cacheDir, key, run);
  if (failedBefore) throw new EarlierBuildFailure(failedBefore);
  const release = await lock(cacheDir, key, report);
  try {
    // Another process may have finished (or failed) the same build while we waited.
    if (!opts.force && await exists(`${dir}/${FILES.manifest}`)) return imagesIn(dir, key);
    const failedMeanwhile = await failureInRun(cacheDir, key, run);
    if (failedMeanwhile) throw new EarlierBuildFailure(failedMeanwhile);
    try {
      await build(cacheDir, recipeDir, key, inputs, opts.jobs ?? availableParallelism(), report);
    } catch (e) {
      await recordBuildFailure(cacheDir, key, e, run);
      throw e;
    }
    await clearBuildFailure(cacheDir, key);
    return imagesIn(dir, key);
  } finally {
    release();
  }
}

/** The failure-marker key of the steps before the recipe key is known (package installs). */
const SETUP_KEY = "setup";

/** Shows the last lines of a failed step's log. */
async function reportTail(e: unknown, report: Reporter): Promise<void> {
  if (e instanceof StepError && e.logPath) {
    const tail = await logTail(e.logPath);
    if (tail) report(`last lines of ${e.logPath}:\n${tail}`);
  }
}

/** One cached data disk (see {@link ensureDataDisk}). */
export interface DataDiskEntry {
  /** The data disk's own cache key (recipe/data files, e2fsprogs version, size). */
  key: string;
  /** The raw ext4 image. */
  disk: string;
  info: DataDiskInfo;
}

/**
 * Returns the cached data disk alone, making it first if needed (about a second: mke2fs
 * over recipe/data). It needs neither a kernel nor busybox, so `./vmesh boot --kernel`
 * gets its default disk without a kernel build. Cached as `.vmesh/guest/data-<key>/`.
 */
export async function ensureDataDisk(
  opts: Pick<EnsureGuestOptions, "cacheDir" | "report" | "recipeDir"> = {},
): Promise<DataDiskEntry> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const report = opts.report ?? stderrReporter;
  const recipeDir = opts.recipeDir ?? fileURLToPath(RECIPE_DIR);
  await Deno.mkdir(`${cacheDir}/logs`, { recursive: true });
  const e2fsprogs = (await installedVersions(["e2fsprogs"])).get("e2fsprogs");
  if (!e2fsprogs) {
    throw new StepError("data disk", "e2fsprogs is not installed: apt-get install e2fsprogs");
  }
  const { key } = await recipeKey(`${recipeDir}/data`, {
    e2fsprogs,
    "data disk MiB": String(DATA_DISK_MIB),
  });
  const dir = `${cacheDir}/data-${key}`;
  const entry = async (): Promise<DataDiskEntry> => ({
    key,
    disk: `${dir}/${FILES.disk}`,
    info: JSON.parse(await Deno.readTextFile(`${dir}/info.json`)),
  });
  if (await exists(`${dir}/info.json`)) return await entry();
  const release = await lock(cacheDir, `data-${key}`, report);
  const scratch = `${cacheDir}/.build-${key}-${Deno.pid}`;
  try {
    if (await exists(`${dir}/info.json`)) return await entry();
    await Deno.mkdir(`${scratch}/out`, { recursive: true });
    const t0 = Date.now();
    report(`  data disk: mke2fs into data-${key}/`);
    const info = await buildDataDisk({
      recipeDataDir: `${recipeDir}/data`,
      stageDir: `${scratch}/data`,
      imagePath: `${scratch}/out/${FILES.disk}`,
      logPath: `${cacheDir}/logs/data-${key}.log`,
      report,
    });
    await Deno.writeTextFile(`${scratch}/out/info.json`, JSON.stringify(info, null, 2) + "\n");
    await Deno.rename(`${scratch}/out`, dir);
    report(`  data disk: ready in ${formatElapsed(Date.now() - t0)}: ${dir}`);
    return await entry();
  } catch (e) {
    await reportTail(e, report);
    throw e;
  } finally {
    await Deno.remove(scratch, { recursive: true }).catch(() => {});
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
    // First: it takes a second, and a broken data recipe then fails before the long steps.
    const data = await timed("data disk", async () => {
      const d = await ensureDataDisk({ cacheDir, recipeDir: recipe, report });
      await Deno.copyFile(d.disk, `${out}/${FILES.disk}`);
      return d.info;
    });
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
    // ensureDataDisk has shown its own log's tail already.
    if (!(e instanceof StepError && e.step.startsWith("data disk"))) await reportTail(e, report);
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
