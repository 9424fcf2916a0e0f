/**
 * The flag walking `vmesh run` (services/cpu/main.ts) and `vmesh boot` (cli/boot_args.ts)
 * share: `--flag VALUE` or `--flag=VALUE`, `-m SIZE`, `--bios PATH|none` and
 * `--timeout SECONDS`. Kept apart from
 * main.ts, which must not be imported (its top-level await would deadlock importers).
 */

import { checkToken } from "../../bus/subjects.ts";
import { parseRamSize } from "./memory_size.ts";

/** Makes the caller's usage error (its class decides the exit code). */
export type UsageErrorFactory = (message: string) => Error;

/** One command-line argument, split into its flag and (for `--flag=VALUE`) value. */
export interface FlagArg {
  /** The argument as given. */
  arg: string;
  /** `arg` up to its `=` for a `--flag=VALUE`, else `arg`. */
  flag: string;
  /** The flag's value: after `=`, else the next argument (consumed); a usage error if none. */
  value(): string;
  /** The arguments after this one (and after any value consumed). */
  rest(): string[];
}

/** Walks `args` one flag at a time; `value()` of a yielded flag consumes its value. */
export function* readFlags(args: string[], usageError: UsageErrorFactory): Generator<FlagArg> {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    yield {
      arg,
      flag,
      value: () => {
        if (eq > 0) return arg.slice(eq + 1);
        if (i + 1 >= args.length) throw usageError(`${flag} needs a value`);
        return args[++i];
      },
      rest: () => args.slice(i + 1),
    };
  }
}

/** Reads a `--timeout` value: a positive decimal number of seconds, else a usage error. */
export function parseTimeoutSeconds(value: string, usageError: UsageErrorFactory): number {
  if (!/^\d+(\.\d+)?$/.test(value) || Number(value) <= 0) {
    throw usageError(`--timeout needs a positive number of seconds, got '${value}'`);
  }
  return Number(value);
}

/** Reads a `-m`/`--memory` value ({@link parseRamSize}) in bytes, else a usage error. */
export function parseMemoryFlag(value: string, usageError: UsageErrorFactory): number {
  try {
    return parseRamSize(value);
  } catch (e) {
    throw usageError(e instanceof Error ? e.message : String(e));
  }
}

/** Execution engines `--engine` selects (QEMU's `-accel tcg` is the translator). */
export const ENGINES = ["jit", "interp"] as const;
/** The engine used when `--engine` is not given. */
export const DEFAULT_ENGINE: typeof ENGINES[number] = "jit";

/** Reads an `--engine` value: "jit" (translator) or "interp" (interpreter only). */
export function parseEngineFlag(
  value: string,
  usageError: UsageErrorFactory,
): typeof ENGINES[number] {
  const v = ENGINES.find((e) => e === value);
  if (!v) throw usageError(`--engine must be ${ENGINES.join(" or ")}, got '${value}'`);
  return v;
}

/** Harts a machine may have (`--smp`), as `MAX_HARTS` in guest_memory.ts. */
export const MAX_SMP = 8;

/** Reads an `--smp` value: a number of harts from 1 to {@link MAX_SMP}, else a usage error. */
export function parseSmpFlag(value: string, usageError: UsageErrorFactory): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw usageError(`--smp needs a positive number of harts, got '${value}'`);
  }
  if (Number(value) > MAX_SMP) {
    throw usageError(`--smp ${value}: at most ${MAX_SMP} harts are supported`);
  }
  return Number(value);
}

/** Reads a `--bios` value: "none" is null (no firmware), anything else a path. */
export function parseBiosFlag(value: string): string | null {
  return value === "none" ? null : value;
}

/** A `--nic switch=NAME[,mac=MAC]` value. */
export interface NicSpec {
  switch: string;
  mac?: string;
}

/** Parses `switch=NAME[,mac=MAC]`; throws a TypeError with a one-line message when bad. */
export function parseNic(spec: string): NicSpec {
  const nic: Partial<NicSpec> = {};
  for (const part of spec.split(",")) {
    const eq = part.indexOf("=");
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? "" : part.slice(eq + 1);
    if (k === "switch" && v) nic.switch = checkToken("switch", v);
    else if (k === "mac" && /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(v)) nic.mac = v;
    else throw new TypeError(`bad --nic part ${JSON.stringify(part)} (want switch=NAME[,mac=MAC])`);
  }
  if (!nic.switch) throw new TypeError(`--nic ${JSON.stringify(spec)} names no switch`);
  return nic as NicSpec;
}

/**
 * The value of one `--new-mac MAC` (a restored NIC's new address): six hex pairs, unicast (a
 * group address could not be a station's). Returned in lower case; throws a TypeError.
 */
export function parseNewMac(v: string): string {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(v)) {
    throw new TypeError(
      `--new-mac ${JSON.stringify(v)} is not a MAC address (want 52:54:00:12:34:56)`,
    );
  }
  if (parseInt(v.slice(0, 2), 16) & 1) {
    throw new TypeError(`--new-mac ${v} is a group (multicast) address, not a station's`);
  }
  return v.toLowerCase();
}

/** The `--nic` value that {@link parseNic} reads back. */
export function formatNic(nic: NicSpec): string {
  return `switch=${nic.switch}${nic.mac ? `,mac=${nic.mac}` : ""}`;
}
