/**
 * The command-line plumbing every device service's main.ts shares: flag parsing with a
 * usage line, one-line fatal errors, the `--http` control endpoint and the wait for
 * SIGINT/SIGTERM before draining.
 *
 * ```ts
 * const cli = new ServiceCli("vmesh-disk", "usage: disk/main.ts --image PATH ...");
 * const flags = cli.parse({ image: { type: "string" }, http: { type: "string" } });
 * if (!flags) Deno.exit(0); // --help printed the usage
 * ```
 * @module
 */

import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import {
  type ControlAppOptions,
  type ControlHttp,
  parseHttpListen,
  startControlHttp,
} from "./control_http.ts";

/** The parsed flag values `parseArgs` gives for `options`. */
export type FlagValues<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O }>
>["values"];

/**
 * Reads an optional `--<name>` flag value as a positive safe integer: undefined when
 * absent; throws a RangeError naming the flag otherwise.
 */
export function parsePositiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new RangeError(`--${name} must be a positive integer: ${value}`);
  }
  return n;
}

/** Resolves with the first SIGINT or SIGTERM the process receives. */
export function untilSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
}

/**
 * One service's command line: every failure is one `<service>: <message>` line on
 * stderr and an exit code (2 = bad usage, 1 = could not start).
 */
export class ServiceCli {
  /** `service` prefixes every error line; `usage` follows flag errors and `--help`. */
  constructor(readonly service: string, readonly usage: string) {}

  /** Prints `<service>: <message>` on stderr and exits with `code`. */
  fail(message: string, code = 2): never {
    console.error(`${this.service}: ${message}`);
    Deno.exit(code);
  }

  /**
   * Parses `args` (default `Deno.args`) against `options`; a bad flag fails with the
   * usage. When `options` has `help` and it is set, prints the usage on stdout and
   * returns undefined.
   */
  parse<O extends ParseArgsOptionsConfig>(
    options: O,
    args: string[] = Deno.args,
  ): FlagValues<O> | undefined {
    let values: FlagValues<O>;
    try {
      values = parseArgs({ args, options }).values as FlagValues<O>;
    } catch (err) {
      this.fail(`${(err as Error).message}\n${this.usage}`);
    }
    if ((values as { help?: unknown }).help === true) {
      console.log(this.usage);
      return undefined;
    }
    return values;
  }

  /** {@link parsePositiveInt}, failing (code 2) on a bad value; `fallback` when absent. */
  positiveInt(name: string, value: string | undefined): number | undefined;
  positiveInt(name: string, value: string | undefined, fallback: number): number;
  positiveInt(name: string, value: string | undefined, fallback?: number): number | undefined {
    try {
      return parsePositiveInt(name, value) ?? fallback;
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  /** Validates a `--http` value before anything starts (fails with code 2). */
  checkHttp(value: string | undefined): void {
    try {
      parseHttpListen(value);
    } catch (err) {
      this.fail((err as Error).message);
    }
  }

  /**
   * Starts the `--http` control endpoint for this service (undefined when off); a port
   * that cannot be bound fails with code 1.
   */
  startHttp(
    value: string | undefined,
    opts: Omit<ControlAppOptions, "service"> & { log?: (line: string) => void },
  ): ControlHttp | undefined {
    try {
      return startControlHttp(value, { ...opts, service: this.service });
    } catch (err) {
      this.fail(`--http: ${(err as Error).message}`, 1);
    }
  }
}
