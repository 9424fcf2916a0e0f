/**
 * Test helpers for GDB sessions against `vmesh run --gdb` or `vmesh boot --gdb`: start vmesh
 * with its stub on a free port, and drive Debian's gdb-multiarch in batch mode.
 */
import { VMESH_CLI } from "./riscv/run.ts";

/** The gdb client the tests use. */
export const GDB = "gdb-multiarch";

/** Whether gdb-multiarch is installed. */
export const gdbInstalled: boolean = await new Deno.Command("sh", {
  args: ["-c", `command -v ${GDB}`],
})
  .output()
  .then((o) => o.success, () => false);

/** A `vmesh run --gdb` or `vmesh boot --gdb` process and the port its stub listens on. */
export interface Vmesh {
  port: number;
  /** Exit code, stdout and stderr once it ends (killed after the test's deadline). */
  done: Promise<{ code: number; stdout: string; stderr: string }>;
}

/** Starts `vmesh run --gdb tcp:127.0.0.1:0 EXTRA... ELF` and waits for its stub's port. */
export function startVmesh(elf: string, extra: string[]): Promise<Vmesh> {
  return startWithGdbStub(["run", "--gdb", "tcp:127.0.0.1:0", ...extra, elf]);
}

/**
 * Starts `vmesh ARGS` (which must include `--gdb tcp:127.0.0.1:0`) and waits for the stderr line
 * naming the stub's port (matching `ready`, whose group 1 is the port); SIGKILLs it after
 * `killAfterMs`; `env` is added to its environment.
 */
export async function startWithGdbStub(
  args: string[],
  killAfterMs = 90_000,
  ready = /gdb stub on tcp:127\.0\.0\.1:(\d+)/,
  env: Record<string, string> = {},
): Promise<Vmesh> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", VMESH_CLI, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const kill = setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  const stdout = new Response(child.stdout).text();
  // Read stderr until the stub names its port, then keep collecting the rest.
  const reader = child.stderr.getReader();
  let stderr = "";
  let port = 0;
  while (port === 0) {
    const { value, done } = await reader.read();
    if (done) break;
    stderr += new TextDecoder().decode(value);
    const m = ready.exec(stderr);
    if (m) port = Number(m[1]);
  }
  const rest = (async () => {
    while (true) {
      const { value, done } = await reader.read();
      if (done) return;
      stderr += new TextDecoder().decode(value);
    }
  })();
  const done = (async () => {
    const status = await child.status;
    clearTimeout(kill);
    await rest;
    return { code: status.code, stdout: await stdout, stderr };
  })();
  if (port === 0) throw new Error(`vmesh did not start its gdb stub:\n${stderr}`);
  return { port, done };
}

/** Runs gdb-multiarch in batch mode: connect to `port`, run `commands`; all it printed. */
export async function gdbBatch(
  elf: string | null,
  port: number,
  commands: string[],
): Promise<string> {
  const args = [
    "-nx",
    "-batch",
    "-ex",
    "set architecture riscv:rv64",
    "-ex",
    `target remote 127.0.0.1:${port}`,
  ];
  for (const c of commands) args.push("-ex", c);
  if (elf) args.push(elf);
  const out = await new Deno.Command(GDB, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}
