/**
 * The net service's command line: switches, each with its own settings, and uplinks.
 * Settings given before the first `--switch` are defaults for every switch; settings
 * after a `--switch NAME` apply to that switch only.
 *
 *   --switch sw0 --subnet 10.0.2.0/24 --gateway 10.0.2.2 --lease 3600 \
 *   --switch lab --mode hub --uplink tap:vmtap0@sw0
 * @module
 */

import { parseArgs } from "node:util";
import { checkToken, parseHttpListen } from "@vmesh/bus";
import { parseCidr } from "./dhcp.ts";
import { parseIp } from "./packet.ts";
import { SWITCH_MODES, type SwitchMode } from "./switch.ts";

/** Usage text. */
export const USAGE =
  `usage: net/main.ts [defaults] [--switch NAME [settings]]... [--uplink tap:IF@SWITCH]...
settings (before any --switch: defaults for all):
  --mode learn|hub|echo   forwarding (default learn)
  --mtu N                 payload bytes per frame, 68..65535 (default 1500)
  --aging SECONDS         learned MACs and silent ports are removed after this (default 300)
  --queue N               frames queued per output port before drops (default 256)
  --subnet A.B.C.D/N      run the gateway + DHCP server on this subnet
  --gateway A.B.C.D       gateway/DHCP server address (default the first host)
  --dns A.B.C.D[,...]     DNS servers offered (default the gateway)
  --lease SECONDS         DHCP lease time (default 3600)
  --leases FILE           keep DHCP leases (MAC -> address) in this JSON file
--uplink tap:IF@SWITCH    bridge host TAP interface IF into SWITCH (needs root/CAP_NET_ADMIN)
--http [HOST:]PORT        control endpoint: GET /healthz, /metrics (Prometheus); 0: a free port
--uplink udp:[LHOST:]LPORT:RHOST:RPORT@SWITCH
                          a UDP tunnel, one frame per datagram (QEMU -netdev socket,udp=...)
without --switch: one switch sw0`;

/** DHCP/gateway settings of a switch. */
export interface DhcpSettings {
  network: number;
  prefix: number;
  gateway: number;
  dns?: number[];
  leaseSecs: number;
  leasesFile?: string;
}

/** One switch's settings. */
export interface SwitchConfig {
  name: string;
  mode: SwitchMode;
  mtu: number;
  agingMs: number;
  queueLimit: number;
  /** Set when the switch runs a gateway and DHCP server. */
  dhcp?: DhcpSettings;
}

/** A host uplink: a TAP interface, or a UDP tunnel (QEMU `-netdev socket,udp=`). */
export type UplinkConfig =
  | {
    kind: "tap";
    /** Host interface name. */
    name: string;
    switch: string;
  }
  | {
    kind: "udp";
    localHost: string;
    localPort: number;
    remoteHost: string;
    remotePort: number;
    switch: string;
  };

/** The whole command line. */
export interface NetConfig {
  switches: SwitchConfig[];
  uplinks: UplinkConfig[];
  /** `--http [HOST:]PORT`: control endpoint (/healthz, /metrics); undefined: none. */
  http?: string;
  help: boolean;
}

const SETTINGS = ["mode", "mtu", "aging", "queue", "subnet", "gateway", "dns", "lease", "leases"];

function int(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new Error(`--${flag} must be ${min}..${max}`);
  return n;
}

function ip(flag: string, v: string): number {
  const a = parseIp(v);
  if (a === undefined) throw new Error(`--${flag} ${JSON.stringify(v)} is not an IPv4 address`);
  return a;
}

function build(name: string, s: Map<string, string>): SwitchConfig {
  checkToken("switch", name);
  const mode = s.get("mode") ?? "learn";
  if (!SWITCH_MODES.includes(mode as SwitchMode)) {
    throw new Error(`--mode must be ${SWITCH_MODES.join(", ")}`);
  }
  const cfg: SwitchConfig = {
    name,
    mode: mode as SwitchMode,
    mtu: int("mtu", s.get("mtu") ?? "1500", 68, 65535),
    agingMs: int("aging", s.get("aging") ?? "300", 1, 86400 * 365) * 1000,
    queueLimit: int("queue", s.get("queue") ?? "256", 1, 1 << 20),
  };
  const subnet = s.get("subnet");
  if (subnet === undefined) {
    for (const k of ["gateway", "dns", "lease", "leases"]) {
      if (s.has(k)) throw new Error(`switch ${name}: --${k} needs --subnet`);
    }
    return cfg;
  }
  const { network, prefix } = parseCidr(subnet);
  const gateway = s.has("gateway") ? ip("gateway", s.get("gateway")!) : network + 1;
  if (((gateway >>> (32 - prefix)) << (32 - prefix)) >>> 0 !== network) {
    throw new Error(`switch ${name}: --gateway is outside ${subnet}`);
  }
  cfg.dhcp = {
    network,
    prefix,
    gateway,
    dns: s.get("dns")?.split(",").map((d) => ip("dns", d)),
    leaseSecs: int("lease", s.get("lease") ?? "3600", 60, 0x7fffffff),
    leasesFile: s.get("leases"),
  };
  return cfg;
}

/** Parses the command line; throws an Error with a one-line message on bad input. */
export function parseNetArgs(args: string[]): NetConfig {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {
    switch: { type: "string", multiple: true },
    uplink: { type: "string", multiple: true },
    http: { type: "string" },
    help: { type: "boolean" },
  };
  for (const k of SETTINGS) options[k] = { type: "string", multiple: true };
  const { tokens } = parseArgs({ args, options, tokens: true, allowPositionals: false });
  const defaults = new Map<string, string>();
  const sections: { name: string; settings: Map<string, string> }[] = [];
  const uplinkSpecs: string[] = [];
  let help = false;
  let http: string | undefined;
  for (const t of tokens ?? []) {
    if (t.kind !== "option") continue;
    const v = t.value ?? "";
    if (t.name === "help") help = true;
    else if (t.name === "http") http = v;
    else if (t.name === "switch") sections.push({ name: v, settings: new Map(defaults) });
    else if (t.name === "uplink") uplinkSpecs.push(v);
    else (sections.at(-1)?.settings ?? defaults).set(t.name, v);
  }
  if (sections.length === 0) sections.push({ name: "sw0", settings: defaults });
  const switches = sections.map((s) => build(s.name, s.settings));
  const names = new Set<string>();
  for (const s of switches) {
    if (names.has(s.name)) throw new Error(`switch ${s.name} given twice`);
    names.add(s.name);
  }
  const uplinks = uplinkSpecs.map((spec): UplinkConfig => {
    const at = spec.lastIndexOf("@");
    const sw = spec.slice(at + 1);
    const what = spec.slice(0, at);
    if (at < 0) throw new Error(`--uplink ${JSON.stringify(spec)} names no @SWITCH`);
    if (!names.has(sw)) throw new Error(`--uplink ${spec}: no switch ${sw}`);
    const tap = /^tap:(.+)$/.exec(what);
    if (tap) return { kind: "tap", name: tap[1], switch: sw };
    const udp = /^udp:(?:([0-9.]+):)?(\d+):([0-9.]+):(\d+)$/.exec(what);
    if (udp) {
      const port = (v: string) => int("uplink", v, 1, 65535);
      for (const h of [udp[1] ?? "127.0.0.1", udp[3]]) ip("uplink", h);
      return {
        kind: "udp",
        localHost: udp[1] ?? "127.0.0.1",
        localPort: port(udp[2]),
        remoteHost: udp[3],
        remotePort: port(udp[4]),
        switch: sw,
      };
    }
    throw new Error(
      `--uplink ${
        JSON.stringify(spec)
      } is not tap:IFNAME@SWITCH or udp:[LHOST:]LPORT:RHOST:RPORT@SWITCH`,
    );
  });
  parseHttpListen(http);
  return { switches, uplinks, http, help };
}
