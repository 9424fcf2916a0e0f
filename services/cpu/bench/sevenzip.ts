/**
 * 7-Zip's own benchmark (`7zr b`, LZMA compression and decompression, MIPS ratings) as a
 * standard guest CPU workload: built from Debian's `7zip` source package with Debian's
 * riscv64 Linux cross compilers, static, cached under `build/std_bench/<key>/`, and put into
 * the guest as a second initramfs archive appended to the guest's own (Linux unpacks
 * concatenated archives), so nothing is downloaded while a guest runs.
 */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureDebSrc, installedVersions } from "../../../guest/debian.ts";
import { encodeCpio, gzipArchive } from "../../../guest/initramfs.ts";
import type { Reporter } from "../../../guest/step_runner.ts";
import { runStep } from "../../../guest/step_runner.ts";

const REPO_ROOT = resolve(fileURLToPath(new URL("../../..", import.meta.url)));

/** Where the 7-Zip binary sits in the guest. */
export const GUEST_7ZR = "/opt/7zr";

/** Debian packages the build needs (g++-riscv64-linux-gnu is in ./vmesh's TOOLS list). */
const TOOLCHAIN = ["g++-riscv64-linux-gnu", "gcc-riscv64-linux-gnu", "libc6-dev-riscv64-cross"];

/** make arguments for CPP/7zip/Bundles/Alone7z (7zr: 7z format only, has `b`). */
const MAKE_ARGS = [
  "-f",
  "makefile.gcc",
  "CC=riscv64-linux-gnu-gcc",
  "CXX=riscv64-linux-gnu-g++",
  // Also links $(O)/7zrs with -static; the guest has no shared libraries.
  "COMPL_STATIC=1",
];

/** The cached static riscv64 `7zr`. */
export interface SevenZipBuild {
  binary: string;
  /** The 7zip source package version it was built from. */
  sourceVersion: string;
}

/** Options for {@link ensureSevenZip}. */
export interface SevenZipOptions {
  /** Cache root; default `<repo>/build/std_bench`. */
  cacheDir?: string;
  report?: Reporter;
}

/**
 * Returns the static riscv64 `7zr`, building it (about a minute on 2 cores) when the cache
 * has none for this toolchain and these flags. Throws a StepError naming its log on failure.
 */
export async function ensureSevenZip(o: SevenZipOptions = {}): Promise<SevenZipBuild> {
  const report = o.report ?? ((l: string) => console.log(l));
  const versions = await installedVersions(TOOLCHAIN);
  const missing = TOOLCHAIN.filter((p) => !versions.has(p));
  if (missing.length) {
    throw new Error(
      `missing Debian packages ${missing.join(" ")}: run ./vmesh once (it installs them), ` +
        `or apt-get install --no-install-recommends ${missing.join(" ")}`,
    );
  }
  const hash = createHash("sha256");
  hash.update(MAKE_ARGS.join("\0"));
  for (const p of TOOLCHAIN) hash.update(`\0${p}=${versions.get(p)}`);
  const dir = join(
    o.cacheDir ?? join(REPO_ROOT, "build", "std_bench"),
    hash.digest("hex").slice(0, 16),
  );
  const binary = join(dir, "7zr");
  const versionFile = join(dir, "source-version");
  if (existsSync(binary) && existsSync(versionFile)) {
    return { binary, sourceVersion: (await Deno.readTextFile(versionFile)).trim() };
  }
  await Deno.mkdir(dir, { recursive: true });
  const logPath = join(dir, "build.log");
  const work = await Deno.makeTempDir({ dir, prefix: "work." });
  try {
    await ensureDebSrc(logPath, report);
    await runStep({
      name: "7zip: apt-get source 7zip",
      cmd: ["apt-get", "source", "-q", "7zip"],
      cwd: work,
      logPath,
      report,
    });
    let src = "", sourceVersion = "";
    for await (const e of Deno.readDir(work)) {
      if (e.isDirectory && e.name.startsWith("7zip-")) src = join(work, e.name);
      const m = e.name.match(/^7zip_(.+)\.dsc$/);
      if (m) sourceVersion = m[1];
    }
    if (!src) {
      throw new Error(`apt-get source 7zip left no 7zip-* tree in ${work} (log ${logPath})`);
    }
    const out = join(work, "out");
    await runStep({
      name: "7zip: make 7zr (riscv64, static)",
      cmd: ["make", "-j2", ...MAKE_ARGS, `O=${out}`],
      cwd: join(src, "CPP/7zip/Bundles/Alone7z"),
      logPath,
      report,
      unit: /-o \S+\.o /,
      every: 50,
    });
    // Rename into place last: a concurrent or interrupted build never leaves a partial binary.
    await Deno.writeTextFile(versionFile, sourceVersion + "\n");
    await Deno.rename(join(out, "7zrs"), binary);
    return { binary, sourceVersion };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * `initramfs` with a second gzip'd newc archive holding `binary` at {@link GUEST_7ZR}
 * appended, written (once per pair of inputs) next to the binary; returns its path.
 */
export async function initramfsWith(initramfs: string, binary: string): Promise<string> {
  const base = await Deno.readFile(initramfs);
  const bin = await Deno.readFile(binary);
  const key = createHash("sha256").update(base).update(bin).digest("hex").slice(0, 16);
  const path = join(resolve(binary, ".."), `initramfs-${key}.cpio.gz`);
  if (existsSync(path)) return path;
  const extra = gzipArchive(encodeCpio([
    { type: "dir", path: "opt" },
    { type: "file", path: GUEST_7ZR.slice(1), data: bin, mode: 0o755 },
  ]));
  // Zero padding to 4 bytes between archives is what the kernel's unpacker skips.
  const pad = (4 - base.length % 4) % 4;
  const out = new Uint8Array(base.length + pad + extra.length);
  out.set(base);
  out.set(extra, base.length + pad);
  const tmp = `${path}.${Deno.pid}.tmp`;
  await Deno.writeFile(tmp, out);
  await Deno.rename(tmp, path);
  return path;
}

/** One `7zr b` result: the "Avr:" and "Tot:" lines. */
export interface SevenZipResult {
  compressKiBs: number;
  compressMips: number;
  decompressKiBs: number;
  decompressMips: number;
  /** The "Tot:" rating (mean of compress and decompress), in MIPS. */
  totalMips: number;
  /** The "1T CPU Freq (MHz)" figures, if printed. */
  freqMHz: number[];
}

/** Parses `7zr b` output; null when the Avr/Tot lines are missing (the run did not finish). */
export function parseSevenZipBench(text: string): SevenZipResult | null {
  const avr = text.match(
    /^Avr:\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s+\|\s+(\d+)\s+\d+\s+\d+\s+(\d+)\s*$/m,
  );
  const tot = text.match(/^Tot:\s+\d+\s+\d+\s+(\d+)\s*$/m);
  if (!avr || !tot) return null;
  // Slow machines print fewer or odd figures there ("-"); keep the numbers.
  const freq = (text.match(/CPU Freq \(MHz\):(.*)$/m)?.[1] ?? "").trim().split(/\s+/)
    .filter((t) => /^\d+$/.test(t)).map(Number);
  return {
    compressKiBs: Number(avr[1]),
    compressMips: Number(avr[2]),
    decompressKiBs: Number(avr[3]),
    decompressMips: Number(avr[4]),
    totalMips: Number(tot[1]),
    freqMHz: freq,
  };
}
