/**
 * Builds a static riscv64 busybox from Debian's busybox source package
 * (`apt-get source busybox`): `defconfig` + guest/recipe/busybox.config.
 */

import { fragmentSettings } from "./kernel_build.ts";
import { Reporter, runStep, StepError } from "./step_runner.ts";

/** Options for {@link buildBusybox}. */
export interface BusyboxBuildOptions {
  /** Scratch directory; the source package is fetched and unpacked here. */
  workDir: string;
  /** Config lines applied over defconfig. */
  fragmentPath: string;
  logPath: string;
  report: Reporter;
  jobs: number;
}

/** The built binary and the applet links it wants (paths like "/bin/sh"). */
export interface BusyboxBuild {
  binary: string;
  links: string[];
  /** The upstream version from the source tree (e.g. "1.35.0"). */
  version: string;
}

/** Rewrites `config` so every fragment setting holds (replacing or appending lines). */
export function applyFragment(config: string, fragment: string): string {
  const wanted = fragmentSettings(fragment);
  const seen = new Set<string>();
  const lines = config.split("\n").map((line) => {
    const m = /^(?:# )?(CONFIG_[A-Za-z0-9_]+)(?:=| is not set)/.exec(line);
    if (!m || !wanted.has(m[1])) return line;
    seen.add(m[1]);
    const v = wanted.get(m[1])!;
    return v === "n" ? `# ${m[1]} is not set` : `${m[1]}=${v}`;
  });
  for (const [k, v] of wanted) {
    if (!seen.has(k)) lines.push(v === "n" ? `# ${k} is not set` : `${k}=${v}`);
  }
  return lines.join("\n");
}

/** Fetches, configures and builds busybox. */
export async function buildBusybox(o: BusyboxBuildOptions): Promise<BusyboxBuild> {
  const step = (name: string) => `busybox: ${name}`;
  await runStep({
    name: step("apt-get source busybox"),
    cmd: ["apt-get", "source", "-q", "busybox"],
    cwd: o.workDir,
    logPath: o.logPath,
    report: o.report,
  });
  let src = "";
  for await (const e of Deno.readDir(o.workDir)) {
    if (e.isDirectory && e.name.startsWith("busybox-")) src = `${o.workDir}/${e.name}`;
  }
  if (!src) {
    throw new StepError(step("find source"), "apt-get source left no busybox-* tree", o.logPath);
  }
  const make = (args: string[], name: string, unit?: RegExp, stdin?: string) =>
    runStep({
      name: step(name),
      cmd: ["make", ...args],
      cwd: src,
      // Debian's busybox takes its build date from here; fixed for reproducible builds.
      env: { SOURCE_DATE_EPOCH: "0" },
      logPath: o.logPath,
      report: o.report,
      unit,
      stdin,
    });
  await make(["defconfig"], "make defconfig");
  const configPath = `${src}/.config`;
  const fragment = await Deno.readTextFile(o.fragmentPath);
  await Deno.writeTextFile(
    configPath,
    applyFragment(await Deno.readTextFile(configPath), fragment),
  );
  // oldconfig asks about nothing new here; the newlines accept defaults if it ever does.
  await make(["oldconfig"], "make oldconfig", undefined, "\n".repeat(200));
  await make([`-j${o.jobs}`], "make", /^\s+(CC|AS)\s/, undefined);
  await make(["busybox.links"], "make busybox.links");
  const links = (await Deno.readTextFile(`${src}/busybox.links`)).split("\n").filter((l) =>
    l.startsWith("/")
  );
  const mk = await Deno.readTextFile(`${src}/Makefile`);
  const ver = ["VERSION", "PATCHLEVEL", "SUBLEVEL"].map((k) =>
    new RegExp(`^${k} = (\\S+)`, "m").exec(mk)?.[1] ?? "?"
  );
  return { binary: `${src}/busybox`, links, version: ver.join(".") };
}
