/**
 * vmesh net service: virtual L2 switches that VMs' virtio-net ports join, each with an
 * optional gateway/DHCP server and host TAP uplinks.
 *
 *   deno run -A services/net/main.ts --switch sw0 --subnet 10.0.2.0/24 --gateway 10.0.2.2 \
 *     [--switch lab --mode hub] [--uplink tap:vmtap0@sw0]
 *
 * NATS_URL selects the server (unset: a private embedded nats-server). Runs until
 * SIGINT/SIGTERM, then stops forwarding, drains and exits 0. An uplink that cannot be
 * opened (no root, no /dev/net/tun) is one error line; the switches keep working.
 * @module
 */

import {
  connect,
  type ControlHttp,
  defaultRegistry,
  startControlHttp,
  watchLifeline,
} from "@vmesh/bus";
import denoJson from "./deno.json" with { type: "json" };
import { type NetConfig, parseNetArgs, USAGE } from "./config.ts";
import { formatIp } from "./packet.ts";
import { Gateway } from "./gateway.ts";
import { registerSwitchMetrics } from "./metrics.ts";
import { SERVICE_NAME, SwitchService } from "./switch_service.ts";
import { VirtualSwitch } from "./switch.ts";
import { TapError, TapPort } from "./tap.ts";
import { UdpPort, UdpUplinkError } from "./udp.ts";

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
  watchLifeline({ name: SERVICE_NAME });
  let cfg: NetConfig;
  try {
    cfg = parseNetArgs(Deno.args);
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (cfg.help) {
    console.log(USAGE);
    return;
  }
  const log = (line: string) => console.error(line);
  const switches = new Map<string, VirtualSwitch>();
  const gateways = new Map<string, Gateway>();
  for (const s of cfg.switches) {
    const sw = new VirtualSwitch(s.name, {
      mode: s.mode,
      mtu: s.mtu,
      agingMs: s.agingMs,
      queueLimit: s.queueLimit,
    });
    switches.set(s.name, sw);
    if (s.dhcp) {
      try {
        gateways.set(s.name, new Gateway(sw, { ...s.dhcp, log }));
      } catch (err) {
        fail(`switch ${s.name}: ${(err as Error).message}`);
      }
    }
  }

  const signal = untilSignal();
  const names = cfg.switches.map((s) => s.name).join(",");
  const bus = await connect({ name: `${SERVICE_NAME}.${names}`.slice(0, 200) });
  const taps: (TapPort | UdpPort)[] = [];
  for (const u of cfg.uplinks) {
    const sw = switches.get(u.switch)!;
    try {
      const port = u.kind === "tap"
        ? TapPort.open(u.name, sw, { log })
        : await UdpPort.open(u, sw, log);
      taps.push(port);
      log(`${SERVICE_NAME}: ${u.switch}: uplink ${u.kind} ${port.name} attached`);
    } catch (err) {
      // One clear line; the switch serves its bus ports without the uplink.
      const known = err instanceof TapError || err instanceof UdpUplinkError;
      const msg = known ? (err as Error).message : `${u.kind}: ${err}`;
      log(`${SERVICE_NAME}: ${u.switch}: uplink not attached: ${msg}`);
    }
  }
  const services: SwitchService[] = [];
  for (const sw of switches.values()) {
    const gw = gateways.get(sw.name);
    const service = new SwitchService(bus, sw, {
      version: denoJson.version,
      log,
      extraStats: () => ({
        gateway: gw
          ? { ...gw.stats, address: formatIp(gw.cfg.gateway), dhcp: gw.dhcp.counts }
          : undefined,
        uplinks: taps.filter((t) => t.sw === sw).map((t) => ({
          port: t.portId,
          name: t.name,
          ...t.stats,
        })),
      }),
    });
    try {
      const svc = await service.start();
      services.push(service);
      const dhcp = gw ? ` gateway=${formatIp(gw.cfg.gateway)}/${gw.cfg.prefix}` : "";
      log(`${SERVICE_NAME} ready: ${svc.prefix} mode=${sw.mode} mtu=${sw.mtu}${dhcp}`);
    } catch (err) {
      for (const s of services) await s.stop();
      for (const t of taps) await t.close();
      await bus.close();
      fail(`cannot serve ${sw.name}: ${(err as Error).message}`, 1);
    }
  }
  registerSwitchMetrics(defaultRegistry, () => [...switches.values()].map((sw) => sw.stats()));
  let http: ControlHttp | undefined;
  try {
    http = startControlHttp(cfg.http, {
      service: SERVICE_NAME,
      log,
      health: () =>
        bus.nc.isClosed()
          ? { ok: false, detail: "bus connection closed" }
          : { ok: true, detail: `serving ${names}` },
    });
  } catch (err) {
    log(`${SERVICE_NAME}: --http: ${(err as Error).message}`);
  }
  const sig = await signal;
  log(`${SERVICE_NAME}: ${sig}, draining`);
  await http?.close();
  for (const s of services) await s.stop();
  for (const t of taps) await t.close();
  await bus.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
