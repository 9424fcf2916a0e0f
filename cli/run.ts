/**
 * `./vmesh run [options] PROGRAM` — runs a RISC-V program on the `virt` machine in this
 * process (see `--help`). The command itself lives in the CPU service's entry point.
 */
import { main as runMachine } from "../services/cpu/main.ts";

/** The `vmesh run` command; returns the process exit code. */
export function main(args: string[]): Promise<number> {
  return runMachine(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
