import assert from "node:assert/strict";
import { Registry } from "@vmesh/bus";
import { registerSwitchMetrics } from "./metrics.ts";
import { VirtualSwitch } from "./switch.ts";

Deno.test("metrics: switch counters render as Prometheus counters and gauges", () => {
  const sw = new VirtualSwitch("sw0");
  sw.join("a", "52:54:00:00:00:01", () => true);
  sw.join("b", "52:54:00:00:00:02", () => true);
  const f = new Uint8Array(60).fill(0xff, 0, 6);
  sw.input("a", f);
  sw.input("a", new Uint8Array(3));
  const reg = new Registry();
  registerSwitchMetrics(reg, () => [sw.stats()]);
  const line = (text: string, name: string) =>
    text.split("\n").find((l) => l.startsWith(name))?.split(" ").at(-1);
  let text = reg.expose();
  assert.equal(
    line(text, 'vmesh_net_port_frames_total{switch="sw0",port="a",direction="rx"}'),
    "1",
  );
  assert.equal(
    line(text, 'vmesh_net_port_bytes_total{switch="sw0",port="b",direction="tx"}'),
    "60",
  );
  assert.equal(line(text, 'vmesh_net_switch_drops_total{switch="sw0",reason="runt"}'), "1");
  assert.equal(line(text, 'vmesh_net_switch_ports{switch="sw0"}'), "2");
  assert.match(text, /# TYPE vmesh_net_port_frames_total counter/);
  // A second scrape adds only what changed.
  sw.input("a", f);
  text = reg.expose();
  assert.equal(
    line(text, 'vmesh_net_port_frames_total{switch="sw0",port="a",direction="rx"}'),
    "2",
  );
  assert.equal(line(text, 'vmesh_net_switch_drops_total{switch="sw0",reason="runt"}'), "1");
});
