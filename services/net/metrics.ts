/**
 * Switch counters as Prometheus metrics: per switch and port rx/tx frames and bytes,
 * drops by reason, ports and learned MACs, refreshed from {@link SwitchStats} at scrape.
 * @module
 */

import type { Registry } from "@vmesh/bus";
import { DROP_REASONS, type SwitchStats } from "./switch.ts";

/**
 * Registers the switch metrics in `reg`; `source` gives the current stats of every
 * switch of the process (read on each scrape).
 */
export function registerSwitchMetrics(reg: Registry, source: () => SwitchStats[]): void {
  const frames = reg.counter(
    "vmesh_net_port_frames_total",
    "Frames through a switch port (rx: from the port, tx: to the port).",
    ["switch", "port", "direction"],
  );
  const bytes = reg.counter(
    "vmesh_net_port_bytes_total",
    "Bytes through a switch port (rx: from the port, tx: to the port).",
    ["switch", "port", "direction"],
  );
  const portDrops = reg.counter(
    "vmesh_net_port_queue_drops_total",
    "Frames for a port dropped because its output queue was full.",
    ["switch", "port"],
  );
  const drops = reg.counter(
    "vmesh_net_switch_drops_total",
    "Frames a switch dropped, by reason.",
    ["switch", "reason"],
  );
  const ports = reg.gauge("vmesh_net_switch_ports", "Ports attached to a switch.", ["switch"]);
  const fdb = reg.gauge("vmesh_net_switch_fdb_entries", "MACs a switch has learned.", ["switch"]);
  // Counters only go up: add what changed since the last scrape (a rejoined port restarts at 0).
  const last = new Map<string, number>();
  const sync = (
    c: { labels(l: Record<string, string>): { inc(n: number): void } },
    key: string,
    labels: Record<string, string>,
    value: number,
  ) => {
    const prior = last.get(key) ?? 0;
    const delta = value >= prior ? value - prior : value;
    if (delta > 0) c.labels(labels).inc(delta);
    last.set(key, value);
  };
  reg.onCollect(() => {
    for (const s of source()) {
      const sw = s.switch;
      ports.labels({ switch: sw }).set(s.ports);
      fdb.labels({ switch: sw }).set(s.fdb);
      for (const r of DROP_REASONS) {
        sync(drops, `d/${sw}/${r}`, { switch: sw, reason: r }, s.drops[r]);
      }
      for (const p of s.portStats) {
        const k = `${sw}/${p.id}`;
        for (const [dir, f, b] of [["rx", p.rxFrames, p.rxBytes], ["tx", p.txFrames, p.txBytes]]) {
          const labels = { switch: sw, port: p.id, direction: dir as string };
          sync(frames, `f/${k}/${dir}`, labels, f as number);
          sync(bytes, `b/${k}/${dir}`, labels, b as number);
        }
        sync(portDrops, `q/${k}`, { switch: sw, port: p.id }, p.txDropped);
      }
    }
  });
}
