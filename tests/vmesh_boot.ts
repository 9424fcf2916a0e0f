/**
 * `./vmesh boot ARGS -- COMMAND` as a child process (batch mode) for guest-level tests:
 * the guest's output comes back on stdout, the launcher's progress on stderr.
 */

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
/** Generous: an interpreter on a loaded 2-core machine; a run normally takes ~5–10 s. */
const TIMEOUT_S = "600";

/** What a batch boot returned. */
export interface BootResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The `--bios/--kernel/--initrd` flags naming the cached guest images (from guest/). */
export { imageArgs } from "../guest/mod.ts";

/** Runs `vmesh boot --timeout 600 ARGS -- COMMAND` with `env` added to NO_COLOR=1. */
export function bootBatch(
  args: string[],
  command: string,
  env: Record<string, string> = {},
): Promise<BootResult> {
  return bootCli(["--timeout", TIMEOUT_S, ...args, "--", command], env);
}

/** Runs `vmesh boot ARGS` as it is given (flag errors, help) with `env` added to NO_COLOR=1. */
export async function bootCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<BootResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "boot", ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
