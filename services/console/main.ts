/**
 * vmesh console service: attaches output backends to a VM's serial console and, with
 * the terminal backend, sends keystrokes to the guest.
 *
 *   deno run -A services/console/main.ts --vm vm1 --backend terminal --backend log:/tmp/vm1.log
 *
 * `Ctrl-A x` (terminal backend) asks the VM to stop with a `vmesh.<vm>.ctl.stop` request
 * (best effort, 1 s) and then exits 0, so a launcher that waits on the console stops the
 * rest. NATS_URL selects the server (unset: a private embedded nats-server). SIGINT or
 * SIGTERM stop the console the same way, without stopping the VM.
 * @module
 */

import {
  busHealth,
  connect,
  ServiceCli,
  untilSignal,
  vm as vmContract,
  watchLifeline,
} from "@vmesh/bus";
import denoJson from "./deno.json" with { type: "json" };
import type { ConsoleSink } from "./console_sink.ts";
import { ConsoleService, SERVICE_NAME } from "./console_service.ts";
import { LogFileSink } from "./log_file.ts";
import { TerminalSink } from "./terminal.ts";
import { parseWebSpec, WebTerminalSink } from "./web_terminal.ts";

const USAGE =
  "usage: console/main.ts [--vm vm1] [--backend terminal|log:PATH|web:[HOST:]PORT]... " +
  "[--http [HOST:]PORT]";

// Typed explicitly so `cli.fail(...)` narrows like a never-returning call.
const cli: ServiceCli = new ServiceCli(SERVICE_NAME, USAGE);

async function openSinks(specs: string[], vm: string): Promise<ConsoleSink[]> {
  const sinks: ConsoleSink[] = [];
  for (const spec of specs) {
    if (spec === "terminal") sinks.push(new TerminalSink());
    else if (spec.startsWith("log:") && spec.length > 4) {
      sinks.push(await LogFileSink.open(spec.slice(4)));
    } else if (spec.startsWith("web:")) {
      sinks.push(await WebTerminalSink.open(parseWebSpec(spec.slice(4)), vm));
    } else cli.fail(`unknown backend ${JSON.stringify(spec)}\n${USAGE}`);
  }
  return sinks;
}

async function main(): Promise<void> {
  watchLifeline({ name: SERVICE_NAME });
  const flags = cli.parse({
    vm: { type: "string", default: Deno.env.get("VMESH_VM") ?? "vm1" },
    backend: { type: "string", multiple: true },
    http: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (!flags) return;
  const vmName = flags.vm;
  cli.checkHttp(flags.http);
  let sinks: ConsoleSink[];
  try {
    sinks = await openSinks(flags.backend ?? ["terminal"], vmName);
  } catch (err) {
    cli.fail(`cannot open backend: ${(err as Error).message}`, 1);
  }

  const stopping = untilSignal();
  const bus = await connect({ name: `${SERVICE_NAME}.${vmName}` });
  const log = (line: string) => console.error(line);
  const console_ = new ConsoleService(bus, { vm: vmName, version: denoJson.version, sinks, log });
  let svc;
  try {
    svc = await console_.start();
  } catch (err) {
    await bus.close();
    cli.fail(`cannot serve: ${(err as Error).message}`, 1);
  }

  let quit: () => void = () => {};
  const quitting = new Promise<string>((resolve) => quit = () => resolve("Ctrl-A x"));
  const terminal = sinks.find((s): s is TerminalSink => s instanceof TerminalSink);
  if (terminal) {
    void terminal.readInput({
      keys: (bytes) => {
        try {
          console_.type(bytes);
        } catch (err) {
          log(`${SERVICE_NAME}: input dropped: ${(err as Error).message}`);
        }
      },
      command: (cmd) => {
        if (cmd === "quit") quit();
        else log(`${SERVICE_NAME}: Ctrl-A c: no monitor yet`);
      },
    });
  }
  for (const web of sinks) {
    if (!(web instanceof WebTerminalSink)) continue;
    web.readInput({ keys: (bytes) => console_.type(bytes) });
    log(`${SERVICE_NAME} web terminal: ${web.url}`);
  }
  const http = cli.startHttp(flags.http, { health: busHealth(bus.nc, svc.prefix), log });
  log(`${SERVICE_NAME} ready: ${svc.prefix} backends=${sinks.map((s) => s.name).join(",")}`);

  const why = await Promise.race([stopping, quitting]);
  if (why === "Ctrl-A x") {
    await terminal?.close();
    try {
      await bus.request({ vm: vmName, device: "ctl" }, vmContract.ops.stop, {}, {
        timeoutMs: 1000,
        retries: 0,
      });
    } catch (err) {
      log(`${SERVICE_NAME}: VM stop request: ${(err as Error).message}`);
    }
  }
  log(`${SERVICE_NAME}: ${why}, closing`);
  await http?.close();
  await console_.stop();
  await bus.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
