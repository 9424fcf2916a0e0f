/**
 * Builds bare-metal RISC-V test programs with the Debian cross toolchain
 * (`riscv64-unknown-elf-gcc`) at test time, cached under `build/riscv/<hash>/` by a hash of
 * every source, the linker script and the flags, so repeated runs skip the compiler.
 */

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The compiler driver this helper runs. */
export const RISCV_GCC = "riscv64-unknown-elf-gcc";

/** Directory of this file (tests/riscv). */
export const RISCV_TEST_DIR: string = dirname(fileURLToPath(import.meta.url));

const REPO_ROOT = resolve(RISCV_TEST_DIR, "..", "..");
const RUNTIME_DIR = join(RISCV_TEST_DIR, "runtime");
const RUNTIME_SOURCES = ["crt.S", "htif.c", "trap.c", "runtime.c"];
const RUNTIME_HEADERS = ["test.h", "frame.h"];
const LINK_SCRIPT = join(RISCV_TEST_DIR, "link.ld");

/** Flags every program is built with (RV64GC, bare metal, no libc). */
export const BASE_FLAGS: readonly string[] = [
  "-march=rv64gc",
  "-mabi=lp64d",
  "-ffreestanding",
  "-fno-builtin",
  "-nostdlib",
  "-nostartfiles",
  "-static",
  "-mcmodel=medany",
  "-O2",
  "-Wall",
];

/** What to build. */
export interface BuildOptions {
  /** Extra compiler flags (appended after BASE_FLAGS). */
  flags?: string[];
  /** Link the runtime (crt.S, htif.c, trap.c, runtime.c); default true. */
  runtime?: boolean;
  /** Cache root; default `<repo>/build/riscv`. */
  cacheDir?: string;
}

/** The toolchain is not installed (a typed error with the fix in its message). */
export class ToolchainMissingError extends Error {
  constructor() {
    super(
      `${RISCV_GCC} not found on PATH: install Debian packages gcc-riscv64-unknown-elf ` +
        `and picolibc-riscv64-unknown-elf (./vmesh boot does this)`,
    );
    this.name = "ToolchainMissingError";
  }
}

/** The compiler rejected the program; `message` holds its diagnostics. */
export class BuildError extends Error {
  constructor(source: string, diagnostics: string) {
    super(`building ${source} failed:\n${diagnostics}`);
    this.name = "BuildError";
  }
}

let toolchainChecked: Promise<void> | undefined;

/** Resolves when the cross compiler runs; rejects with ToolchainMissingError otherwise. */
export function checkToolchain(): Promise<void> {
  toolchainChecked ??= (async () => {
    try {
      const out = await new Deno.Command(RISCV_GCC, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (!out.success) throw new ToolchainMissingError();
    } catch (e) {
      if (e instanceof ToolchainMissingError) throw e;
      throw new ToolchainMissingError();
    }
  })();
  return toolchainChecked;
}

/**
 * Compiles `sources` (C or assembly; paths relative to tests/riscv or absolute) into one
 * ELF and returns its path. The first source names the output.
 */
export async function buildProgram(
  sources: string | string[],
  options: BuildOptions = {},
): Promise<string> {
  await checkToolchain();
  const progSources = (Array.isArray(sources) ? sources : [sources]).map((s) =>
    resolve(RISCV_TEST_DIR, s)
  );
  const withRuntime = options.runtime ?? true;
  const inputs = [
    ...(withRuntime ? RUNTIME_SOURCES.map((s) => join(RUNTIME_DIR, s)) : []),
    ...progSources,
  ];
  const hashed = [...inputs, ...RUNTIME_HEADERS.map((h) => join(RUNTIME_DIR, h)), LINK_SCRIPT];
  const flags = [...BASE_FLAGS, ...(options.flags ?? [])];

  const hash = createHash("sha256");
  hash.update(flags.join("\0"));
  for (const path of hashed) {
    hash.update("\0" + basename(path) + "\0");
    try {
      hash.update(await Deno.readFile(path));
    } catch {
      throw new BuildError(path, `cannot read ${path}`);
    }
  }
  const key = hash.digest("hex").slice(0, 16);
  const name = basename(progSources[0]).replace(/\.[^.]+$/, "");
  const outDir = join(options.cacheDir ?? join(REPO_ROOT, "build", "riscv"), key);
  const elf = join(outDir, `${name}.elf`);
  if (existsSync(elf)) return elf;

  await Deno.mkdir(outDir, { recursive: true });
  // Compile to a private name, then rename: concurrent builders never see a partial ELF.
  const tmp = join(outDir, `${name}.${Deno.pid}.${crypto.randomUUID()}.tmp`);
  const out = await new Deno.Command(RISCV_GCC, {
    args: [...flags, `-I${RUNTIME_DIR}`, "-T", LINK_SCRIPT, ...inputs, "-o", tmp],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(tmp).catch(() => {});
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new BuildError(progSources[0], text.trim());
  }
  await Deno.rename(tmp, elf);
  return elf;
}
