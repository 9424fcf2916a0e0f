/**
 * A subcommand's flags as `./vmesh snapshot`, `restore` and `clone` read them: `-h` prints the
 * usage text (exit 0), a bad flag or argument is one line naming `--help` (exit 2).
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";

/** What `parseArgs` gives for `options` with positionals allowed. */
export type CommandArgs<O extends ParseArgsOptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; allowPositionals: true; options: O }>
>;

/** How {@link parseCommandArgs} reads one subcommand's arguments. */
export interface CommandArgsSpec<O extends ParseArgsOptionsConfig> {
  /** The subcommand, as in `./vmesh COMMAND`. */
  command: string;
  /** Printed for `-h`/`--help`. */
  usage: string;
  args: string[];
  /** The flags; a boolean `help` (short `h`) is expected among them. */
  options: O;
  /** Throws an Error saying what is wrong with the parsed arguments. */
  check?(parsed: CommandArgs<O>): void;
}

/**
 * The parsed arguments, or the exit code when the command is done already (help: 0, a usage
 * error said on stderr: 2).
 * @example
 * ```ts
 * const parsed = parseCommandArgs({
 *   command: "restore",
 *   usage: "usage: ./vmesh restore SNAP",
 *   args: ["snap1"],
 *   options: { help: { type: "boolean", short: "h", default: false } },
 *   check: ({ positionals }) => {
 *     if (positionals.length !== 1) throw new Error("give exactly one snapshot name");
 *   },
 * });
 * if (typeof parsed !== "number") console.log(parsed.positionals[0]);
 * ```
 */
export function parseCommandArgs<O extends ParseArgsOptionsConfig>(
  spec: CommandArgsSpec<O>,
): CommandArgs<O> | number {
  try {
    const parsed = parseArgs({ args: spec.args, allowPositionals: true, options: spec.options });
    if ((parsed.values as { help?: boolean }).help) {
      console.log(spec.usage);
      return 0;
    }
    spec.check?.(parsed);
    return parsed;
  } catch (e) {
    console.error(
      `vmesh ${spec.command}: ${(e as Error).message} (see ./vmesh ${spec.command} --help)`,
    );
    return 2;
  }
}

/** Throws unless `engine` is unset, `jit` or `interp` (the `--engine` flag). */
export function checkEngine(engine: string | undefined): void {
  if (engine !== undefined && !["jit", "interp"].includes(engine)) {
    throw new Error(`--engine must be jit or interp, got '${engine}'`);
  }
}
