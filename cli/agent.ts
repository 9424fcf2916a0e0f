/**
 * `./vmesh agent [options]` — runs this host's agent (services/agent/main.ts): it announces
 * the host's capacity and load and starts the VMs the control service places here.
 */
import { main as runAgent } from "../services/agent/main.ts";

/** The `vmesh agent` command; returns the process exit code. */
export function main(args: string[]): Promise<number> {
  return runAgent(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
