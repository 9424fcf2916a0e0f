import assert from "node:assert/strict";
import { escapeLabelValue, formatValue, Registry } from "./metrics.ts";

Deno.test("metrics: counters, gauges and histograms render in exposition format 0.0.4", () => {
  const reg = new Registry();
  const c = reg.counter("t_requests_total", "Requests.\nSecond line \\ here.", ["op", "status"]);
  c.inc({ op: "read", status: "OK" });
  c.inc({ op: "read", status: "OK" }, 2);
  c.inc({ op: 'we"ird\n', status: "a\\b" });
  const g = reg.gauge("t_queue_depth", "Depth.");
  g.labels().set(5);
  g.labels().dec(2);
  const h = reg.histogram("t_latency_seconds", "Latency.", ["op"], [0.1, 1]);
  h.observe({ op: "read" }, 0.05);
  h.observe({ op: "read" }, 0.1); // le is inclusive
  h.observe({ op: "read" }, 0.5);
  h.observe({ op: "read" }, 7);
  assert.equal(
    reg.expose(),
    [
      "# HELP t_requests_total Requests.\\nSecond line \\\\ here.",
      "# TYPE t_requests_total counter",
      't_requests_total{op="read",status="OK"} 3',
      't_requests_total{op="we\\"ird\\n",status="a\\\\b"} 1',
      "# HELP t_queue_depth Depth.",
      "# TYPE t_queue_depth gauge",
      "t_queue_depth 3",
      "# HELP t_latency_seconds Latency.",
      "# TYPE t_latency_seconds histogram",
      't_latency_seconds_bucket{op="read",le="0.1"} 2',
      't_latency_seconds_bucket{op="read",le="1"} 3',
      't_latency_seconds_bucket{op="read",le="+Inf"} 4',
      't_latency_seconds_sum{op="read"} 7.65',
      't_latency_seconds_count{op="read"} 4',
      "",
    ].join("\n"),
  );
});

Deno.test("metrics: the same family is returned again; conflicts and bad names throw", () => {
  const reg = new Registry();
  const a = reg.counter("x_total", "X.", ["op"]);
  assert.equal(reg.counter("x_total", "X.", ["op"]), a);
  assert.throws(() => reg.gauge("x_total", "X.", ["op"]), /already registered/);
  assert.throws(() => reg.counter("x_total", "X.", ["other"]), /already registered/);
  assert.throws(() => reg.counter("1bad", "B."), /bad metric name/);
  assert.throws(() => reg.counter("ok_total", "B.", ["le"]), /bad label name/);
  assert.throws(() => reg.histogram("h", "H.", [], [1, 1]), /increasing/);
  assert.throws(() => a.inc({}), /label op missing/);
  assert.throws(() => a.inc({ op: "r", extra: "1" }), /unknown labels extra/);
  assert.throws(() => a.inc({ op: "r" }, -1), RangeError);
  assert.equal(new Registry().expose(), "");
});

Deno.test("metrics: value and label formatting", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(1e-7), "1e-7");
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});

Deno.test("metrics: collectors refresh gauges on every expose", () => {
  const reg = new Registry();
  const g = reg.gauge("t_calls", "Calls.");
  let n = 0;
  reg.onCollect(() => g.labels().set(++n));
  assert.match(reg.expose(), /^t_calls 1$/m);
  assert.match(reg.expose(), /^t_calls 2$/m);
});
