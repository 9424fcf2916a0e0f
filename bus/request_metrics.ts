/**
 * The metrics of served bus requests: requests by op and status, request and reply
 * bytes, errors, and a latency histogram in seconds. Families are registered once
 * per registry; each endpoint pre-resolves its children so a request costs a few
 * additions.
 *
 * @module
 */
import {
  type CounterChild,
  type HistogramChild,
  LATENCY_BUCKETS,
  type Registry,
} from "./metrics.ts";

/** Names of the bus request metric families. */
export const BUS_METRICS = {
  requests: "vmesh_bus_requests_total",
  requestBytes: "vmesh_bus_request_bytes_total",
  replyBytes: "vmesh_bus_reply_bytes_total",
  errors: "vmesh_bus_errors_total",
  duration: "vmesh_bus_request_duration_seconds",
} as const;

const LABELS = ["service", "vm", "device", "op"] as const;

/** The counters of one endpoint (one op of one service). */
export class EndpointMetrics {
  readonly #requests = new Map<string, CounterChild>();
  readonly #errors = new Map<string, CounterChild>();
  readonly #requestBytes: CounterChild;
  readonly #replyBytes: CounterChild;
  readonly #duration: HistogramChild;
  readonly #labels: Record<string, string>;

  constructor(
    readonly registry: Registry,
    service: string,
    vm: string,
    device: string,
    op: string,
  ) {
    this.#labels = { service, vm, device, op };
    const r = registry;
    this.#requestBytes = r.counter(
      BUS_METRICS.requestBytes,
      "Bytes of request payloads received.",
      LABELS,
    ).labels(this.#labels);
    this.#replyBytes = r.counter(BUS_METRICS.replyBytes, "Bytes of reply payloads sent.", LABELS)
      .labels(this.#labels);
    this.#duration = r.histogram(
      BUS_METRICS.duration,
      "Time from receiving a request to sending its reply, seconds.",
      LABELS,
      LATENCY_BUCKETS,
    ).labels(this.#labels);
  }

  /** Records one served request; `status` is "OK" or the error's status name. */
  record(status: string, requestBytes: number, replyBytes: number, seconds: number): void {
    this.#child(this.#requests, BUS_METRICS.requests, "Requests served, by status.", status).inc();
    if (status !== "OK") {
      this.#child(this.#errors, BUS_METRICS.errors, "Requests answered with an error.", status)
        .inc();
    }
    this.#requestBytes.inc(requestBytes);
    this.#replyBytes.inc(replyBytes);
    this.#duration.observe(seconds);
  }

  #child(cache: Map<string, CounterChild>, name: string, help: string, status: string) {
    let c = cache.get(status);
    if (!c) {
      c = this.registry.counter(name, help, [...LABELS, "status"]).labels({
        ...this.#labels,
        status,
      });
      cache.set(status, c);
    }
    return c;
  }
}
