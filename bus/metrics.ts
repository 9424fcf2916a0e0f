/**
 * A small Prometheus metrics registry: counters, gauges and fixed-bucket histograms
 * with labels, rendered in the text exposition format 0.0.4 (`# HELP` / `# TYPE`).
 *
 * ```ts
 * const reg = new Registry();
 * const reqs = reg.counter("vmesh_requests_total", "Requests served.", ["op"]);
 * reqs.labels({ op: "read" }).inc();
 * const text = reg.expose(); // serve with Content-Type: text/plain; version=0.0.4
 * ```
 *
 * @module
 */

/** Label values by label name. */
export type Labels = Record<string, string>;

/** Content type of {@link Registry.expose}'s output. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Default histogram buckets for latencies in seconds (50 µs .. 10 s). */
export const LATENCY_BUCKETS: readonly number[] = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The kinds of metric, as written in `# TYPE` lines. */
export type MetricType = "counter" | "gauge" | "histogram";

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** A number as the exposition format writes it (`+Inf`, `-Inf`, `NaN`). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

function renderLabels(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

/** What every metric family has in common. */
abstract class Family<Child> {
  readonly #children = new Map<string, { values: string[]; child: Child }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!METRIC_NAME.test(name)) throw new TypeError(`bad metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || l === "le") {
        throw new TypeError(`metric ${name}: bad label name ${JSON.stringify(l)}`);
      }
    }
  }

  abstract readonly type: MetricType;
  protected abstract make(): Child;
  protected abstract renderChild(labels: string[], child: Child): string[];

  /** The child for these label values (created at zero on first use). */
  labels(labels: Labels = {}): Child {
    const values = this.labelNames.map((n) => {
      const v = labels[n];
      if (typeof v !== "string") throw new TypeError(`metric ${this.name}: label ${n} missing`);
      return v;
    });
    if (Object.keys(labels).length !== values.length) {
      const extra = Object.keys(labels).filter((k) => !this.labelNames.includes(k));
      throw new TypeError(`metric ${this.name}: unknown labels ${extra.join(",")}`);
    }
    // \u0000 cannot occur in a sane label value and keeps the key unambiguous.
    const key = values.join("\u0000");
    let entry = this.#children.get(key);
    if (!entry) {
      entry = { values, child: this.make() };
      this.#children.set(key, entry);
    }
    return entry.child;
  }

  /** Drops every child (e.g. before a collector refills gauges). */
  reset(): void {
    this.#children.clear();
  }

  /** The family's lines in exposition format, HELP and TYPE first. */
  render(): string[] {
    const out = [
      `# HELP ${this.name} ${escapeHelp(this.help)}`,
      `# TYPE ${this.name} ${this.type}`,
    ];
    for (const { values, child } of this.#children.values()) {
      out.push(...this.renderChild(values, child));
    }
    return out;
  }
}

/** One labelled counter: only goes up. */
export class CounterChild {
  value = 0;
  /** Adds `n` (default 1); negative or non-finite amounts are refused. */
  inc(n = 1): void {
    if (!(n >= 0) || !Number.isFinite(n)) throw new RangeError(`counter increment ${n} < 0`);
    this.value += n;
  }
}

/** A counter family. */
export class Counter extends Family<CounterChild> {
  readonly type = "counter";
  protected make(): CounterChild {
    return new CounterChild();
  }
  protected renderChild(values: string[], c: CounterChild): string[] {
    return [`${this.name}${renderLabels(this.labelNames, values)} ${formatValue(c.value)}`];
  }
  /** Shorthand for `labels(l).inc(n)`. */
  inc(labels: Labels = {}, n = 1): void {
    this.labels(labels).inc(n);
  }
}

/** One labelled gauge: goes up and down. */
export class GaugeChild {
  value = 0;
  /** Sets the value. */
  set(v: number): void {
    this.value = v;
  }
  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
  }
  /** Subtracts `n` (default 1). */
  dec(n = 1): void {
    this.value -= n;
  }
}

/** A gauge family. */
export class Gauge extends Family<GaugeChild> {
  readonly type = "gauge";
  protected make(): GaugeChild {
    return new GaugeChild();
  }
  protected renderChild(values: string[], g: GaugeChild): string[] {
    return [`${this.name}${renderLabels(this.labelNames, values)} ${formatValue(g.value)}`];
  }
  /** Shorthand for `labels(l).set(v)`. */
  set(labels: Labels, v: number): void {
    this.labels(labels).set(v);
  }
}

/** One labelled histogram: counts of observations per upper bound, their sum and count. */
export class HistogramChild {
  /** Non-cumulative count per bucket; the last slot is +Inf. */
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = new Array(buckets.length + 1).fill(0);
  }
  /** Records one observation. */
  observe(v: number): void {
    if (Number.isNaN(v)) return;
    let i = 0;
    while (i < this.buckets.length && v > this.buckets[i]) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/** A histogram family with fixed buckets. */
export class Histogram extends Family<HistogramChild> {
  readonly type = "histogram";
  readonly buckets: readonly number[];
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    super(name, help, labelNames);
    if (buckets.length === 0) throw new TypeError(`histogram ${name}: no buckets`);
    for (let i = 0; i < buckets.length; i++) {
      if (!Number.isFinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
        throw new TypeError(`histogram ${name}: buckets must be finite and increasing`);
      }
    }
    this.buckets = [...buckets];
  }
  protected make(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  protected renderChild(values: string[], h: HistogramChild): string[] {
    const out: string[] = [];
    let cumulative = 0;
    for (let i = 0; i <= this.buckets.length; i++) {
      cumulative += h.counts[i];
      const le = i < this.buckets.length ? formatValue(this.buckets[i]) : "+Inf";
      const labels = renderLabels(this.labelNames, values, `le="${le}"`);
      out.push(`${this.name}_bucket${labels} ${cumulative}`);
    }
    const labels = renderLabels(this.labelNames, values);
    out.push(`${this.name}_sum${labels} ${formatValue(h.sum)}`);
    out.push(`${this.name}_count${labels} ${h.count}`);
    return out;
  }
  /** Shorthand for `labels(l).observe(v)`. */
  observe(labels: Labels, v: number): void {
    this.labels(labels).observe(v);
  }
}

/** Any metric family. */
export type Metric = Counter | Gauge | Histogram;

/** A set of metric families rendered together. */
export class Registry {
  readonly #families = new Map<string, Metric>();
  readonly #collectors: (() => void)[] = [];

  /** A counter; asking again for the same name and labels returns the same family. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#get(name, "counter", labelNames, () => new Counter(name, help, labelNames));
  }

  /** A gauge; asking again for the same name and labels returns the same family. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#get(name, "gauge", labelNames, () => new Gauge(name, help, labelNames));
  }

  /** A histogram with fixed buckets (default {@link LATENCY_BUCKETS}). */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
    buckets: readonly number[] = LATENCY_BUCKETS,
  ): Histogram {
    return this.#get(
      name,
      "histogram",
      labelNames,
      () => new Histogram(name, help, labelNames, buckets),
    );
  }

  /** Runs `fn` before every {@link expose} (to refresh gauges such as memory use). */
  onCollect(fn: () => void): void {
    this.#collectors.push(fn);
  }

  /** The family of that name, if registered. */
  get(name: string): Metric | undefined {
    return this.#families.get(name);
  }

  /** Every family in text exposition format 0.0.4 (ends with a newline). */
  expose(): string {
    for (const fn of this.#collectors) fn();
    const lines: string[] = [];
    for (const f of this.#families.values()) lines.push(...f.render());
    return lines.length ? lines.join("\n") + "\n" : "";
  }

  #get<M extends Metric>(
    name: string,
    type: MetricType,
    labelNames: readonly string[],
    make: () => M,
  ): M {
    const prior = this.#families.get(name);
    if (prior) {
      if (prior.type !== type || prior.labelNames.join(",") !== labelNames.join(",")) {
        throw new TypeError(`metric ${name} is already registered as another ${prior.type}`);
      }
      return prior as M;
    }
    const m = make();
    this.#families.set(name, m);
    return m;
  }
}

/** The process-wide registry: bus services count into it unless given another. */
export const defaultRegistry: Registry = new Registry();

const withProcessMetrics = new WeakSet<Registry>();

/** Adds process gauges (memory, uptime) refreshed on every scrape. */
export function collectProcessMetrics(reg: Registry): void {
  if (withProcessMetrics.has(reg)) return;
  withProcessMetrics.add(reg);
  const rss = reg.gauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  const heap = reg.gauge("deno_heap_used_bytes", "V8 heap in use, in bytes.");
  const start = reg.gauge("process_start_time_seconds", "Start time since the epoch, seconds.");
  const started = (Date.now() - performance.now()) / 1000;
  reg.onCollect(() => {
    const m = Deno.memoryUsage();
    rss.labels().set(m.rss);
    heap.labels().set(m.heapUsed);
    start.labels().set(started);
  });
}
