/**
 * vmesh net service: one virtual switch that VMs' virtio-net ports join.
 *
 *   deno run -A services/net/main.ts --switch sw0 [--mode hub|echo] [--mtu 1500]
 *
 * NATS_URL selects the server (unset: a private embedded nats-server). Runs until
 * SIGINT/SIGTERM, then stops forwarding, drains and exits 0.
 * @module
 */

import { parseArgs } from "node:util";
import { checkToken, connect } from "@vmesh/bus";
import denoJson from "./deno.json" with { type: "json" };
import { SERVICE_NAME, SwitchService } from "./switch_service.ts";
import { type SwitchMode, VirtualSwitch } from "./switch.ts";

const USAGE = "usage: net/main.ts [--switch sw0] [--mode hub|echo] [--mtu 1500]";

function fail(message: string, code = 2): never {
  console.error(`${SERVICE_NAME}: ${message}`);
  Deno.exit(code);
}

function untilSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
}

async function main(): Promise<void> {
  let flags;
  try {
    flags = parseArgs({
      args: Deno.args,
      options: {
        switch: { type: "string", default: "sw0" },
        mode: { type: "string", default: "hub" },
        mtu: { type: "string", default: "1500" },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  try {
    checkToken("switch", flags.switch);
  } catch (err) {
    fail((err as Error).message);
  }
  if (flags.mode !== "hub" && flags.mode !== "echo") fail(`--mode must be hub or echo\n${USAGE}`);
  const mtu = Number(flags.mtu);
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) fail(`--mtu must be 68..65535`);

  const signal = untilSignal();
  const bus = await connect({ name: `${SERVICE_NAME}.${flags.switch}` });
  const sw = new VirtualSwitch(flags.switch, flags.mode as SwitchMode, mtu);
  const log = (line: string) => console.error(line);
  const service = new SwitchService(bus, sw, { version: denoJson.version, log });
  let svc;
  try {
    svc = await service.start();
  } catch (err) {
    await bus.close();
    fail(`cannot serve: ${(err as Error).message}`, 1);
  }
  log(`${SERVICE_NAME} ready: ${svc.prefix} mode=${sw.mode} mtu=${mtu}`);
  const sig = await signal;
  log(`${SERVICE_NAME}: ${sig}, draining`);
  await service.stop();
  await bus.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
