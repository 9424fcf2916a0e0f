/**
 * `./vmesh control [options]` — runs the control service (services/control/main.ts): VM
 * records in JetStream, placement, the bus ops, REST API and web page.
 */
import { main as runControl } from "../services/control/main.ts";

/** The `vmesh control` command; returns the process exit code. */
export function main(args: string[]): Promise<number> {
  return runControl(args);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
