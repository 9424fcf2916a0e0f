/**
 * vmesh control service (`NATS_URL=... deno run -A services/control/main.ts --http 8095`):
 * places VMs on the hosts whose agents announce themselves, keeps their records in
 * JetStream, and serves the control ops on the bus, a REST API and a web page.
 * @module
 */

import { busHealth, connect, ServiceCli, untilSignal, watchLifeline } from "@vmesh/bus";
import { ControlService } from "./control_service.ts";
import { controlRestApi } from "./rest_api.ts";
import { controlWebPage } from "./web_page.ts";

const USAGE = `usage: ./vmesh control [options]   (or deno run -A services/control/main.ts)

Serves vmesh.control.{create,list,inspect,stop,start,rm,logs,hosts} on the bus, keeps VM
records in the JetStream KV bucket vmesh-control and events in the stream
VMESH_CONTROL_EVENTS (the server must run with -js), and places VMs on the hosts whose
agents announce on vmesh.host.<host>.load. One control plane per bus: several control
services on one bus share the ops and the state.
  --http [HOST:]PORT   REST API (/api/...), web page (/), /healthz, /metrics (default 8095;
                       0: a free port; off: none)
  --lost-timeout MS    a host silent this long is lost, and its VMs with it (default 5000)
  --jaeger-ui URL      link each VM on the web page to its traces in this Jaeger UI
  --rebalance          live-migrate a VM off a host whose VMs use --rebalance-cpu of its
                       cores or more for --rebalance-after (policy in the README; off
                       unless given)
  --rebalance-cpu F    the overload share of a host's cores (default 0.9)
  --rebalance-after MS how long a host stays overloaded before a move (default 30000)
  -h, --help           this text
NATS_URL selects the server.`;

/** Runs the control service until SIGINT/SIGTERM; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  watchLifeline({ name: "vmesh-control" });
  const cli = new ServiceCli("vmesh-control", USAGE);
  const flags = cli.parse({
    http: { type: "string", default: "8095" },
    "lost-timeout": { type: "string", default: "5000" },
    "jaeger-ui": { type: "string" },
    rebalance: { type: "boolean" },
    "rebalance-cpu": { type: "string", default: "0.9" },
    "rebalance-after": { type: "string", default: "30000" },
    help: { type: "boolean", short: "h" },
  }, args);
  if (!flags) return 0;
  cli.checkHttp(flags.http);
  const lostTimeoutMs = cli.positiveInt("lost-timeout", flags["lost-timeout"], 5000);
  const cpuThreshold = Number(flags["rebalance-cpu"]);
  if (!(cpuThreshold > 0 && cpuThreshold <= 1)) cli.fail("--rebalance-cpu must be in (0, 1]", 2);
  const afterMs = cli.positiveInt("rebalance-after", flags["rebalance-after"], 30000);
  const natsUrl = Deno.env.get("NATS_URL") ?? "";
  if (!natsUrl) cli.fail("NATS_URL is not set: the control service joins the agents' bus", 2);
  const bus = await connect({ url: natsUrl, name: "vmesh-control" });
  let ctl: ControlService | undefined;
  try {
    ctl = await ControlService.start(bus, {
      lostTimeoutMs,
      ...(flags.rebalance ? { rebalance: { cpuThreshold, afterMs } } : {}),
    });
  } catch (e) {
    await bus.close();
    cli.fail(
      `cannot open the JetStream state (is nats-server run with -js?): ${(e as Error).message}`,
      1,
    );
  }
  if (!ctl) return 1;
  const http = cli.startHttp(flags.http, {
    health: busHealth(bus.nc, "vmesh-control"),
    routes: [{ path: "/api", app: controlRestApi(ctl) }, {
      path: "/",
      app: controlWebPage({ jaegerUi: flags["jaeger-ui"] }),
    }],
  });
  console.error(
    `vmesh-control ready: ${ctl.list().vms.length} VM record(s), lost timeout ${lostTimeoutMs} ms` +
      (flags.rebalance ? `, rebalance at ${cpuThreshold} for ${afterMs} ms` : "") +
      (http ? `, http ${http.url}` : ""),
  );
  const sig = await untilSignal();
  console.error(`vmesh-control: ${sig}, stopping (the records stay in JetStream)`);
  await http?.close();
  await ctl.close();
  await bus.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
