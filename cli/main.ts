/**
 * `./vmesh` command dispatcher. The bash launcher installs Deno and the Debian tools first,
 * then runs this file; each subcommand lives in its own module with `main(args)`.
 */

import { SUMMARIES as VM_COMMANDS } from "./vm_command_summaries.ts";

/** A subcommand: its module's `main` gets the arguments (and the name too, when `named`). */
interface Command {
  summary: string;
  module: string;
  named?: boolean;
}

const COMMANDS: Record<string, Command> = {
  boot: { summary: "boot the default Linux VM (devices as NATS services)", module: "./boot.ts" },
  run: { summary: "run a bare-metal RISC-V ELF program (HTIF or UART output)", module: "./run.ts" },
  guest: {
    summary: "build the guest images (kernel, busybox, disk) from Debian sources",
    module: "./guest.ts",
  },
  up: { summary: "run the compose.yaml topology as local processes", module: "./up.ts" },
  snapshot: {
    summary: "store a running VM (RAM pages, harts, devices) in the memory service",
    module: "./snapshot.ts",
  },
  restore: { summary: "run a VM from a snapshot (the guest carries on)", module: "./restore.ts" },
  migrate: {
    summary: "move a running VM's CPU service to another host, live (pre-copy)",
    module: "./migrate.ts",
  },
  clone: { summary: "run N VMs from one snapshot, each with its own disks", module: "./clone.ts" },
  snapshots: {
    summary: "list the stored snapshots (size, age); --rm removes one",
    module: "./snapshots.ts",
  },
  export: {
    summary: "write a snapshot as one appliance file (pages, disks, flags)",
    module: "./export.ts",
  },
  import: {
    summary: "run an appliance file on this host (checked whole first)",
    module: "./import.ts",
  },
  test: {
    summary: "run every check and test (fmt, lint, type check, deno test)",
    module: "./test.ts",
  },
  control: {
    summary: "run the control service (VM records, placement, REST API, web page)",
    module: "./control.ts",
  },
  agent: { summary: "run this host's agent (announces load, runs VMs)", module: "./agent.ts" },
  console: {
    summary: "attach to a VM's serial console (Ctrl-] detaches)",
    module: "./vm_console.ts",
  },
  ...Object.fromEntries(
    Object.entries(VM_COMMANDS).map((
      [name, summary],
    ) => [name, { summary, module: "./vm_commands.ts", named: true }]),
  ),
};

/** The top-level usage text. */
export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) =>
    `  ${name.padEnd(width)}  ${c.summary}`
  );
  return [
    "vmesh — a RISC-V machine emulator whose devices are services on a NATS bus",
    "",
    "Usage: ./vmesh <command> [options]      (./vmesh <command> --help for its options)",
    "       ./vmesh --version",
    "",
    "Commands:",
    ...lines,
    "",
    "Environment:",
    "  NATS_URL                      use this NATS server instead of a private embedded one",
    "  OTEL_EXPORTER_OTLP_ENDPOINT   export OpenTelemetry traces over OTLP/HTTP",
  ].join("\n");
}

/** The checked-out commit (`git rev-parse --short HEAD`), or "unknown" outside a clone. */
async function commit(): Promise<string> {
  try {
    const r = await new Deno.Command("git", {
      args: ["rev-parse", "--short", "HEAD"],
      cwd: new URL("..", import.meta.url).pathname,
      stdout: "piped",
      stderr: "null",
    }).output();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : "unknown";
  } catch {
    return "unknown";
  }
}

/** Runs the command line; returns the process exit code. */
export async function main(args: string[]): Promise<number> {
  const [cmd, ...rest] = args;
  if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
    console.log(usage());
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === "--version" || cmd === "version") {
    console.log(`vmesh ${await commit()} (Deno ${Deno.version.deno}, V8 ${Deno.version.v8})`);
    return 0;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    console.error(`vmesh: unknown command '${cmd}'. Run ./vmesh --help for the list.`);
    return 2;
  }
  const mod = await import(entry.module) as { main(args: string[]): Promise<number> };
  return await mod.main(entry.named ? [cmd, ...rest] : rest);
}

if (import.meta.main) Deno.exit(await main(Deno.args));
