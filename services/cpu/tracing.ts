/**
 * OpenTelemetry spans of the CPU service: one trace per virtio-blk request (`virtio-blk
 * <op>`, whose bus requests are its children), the `vm boot` lifecycle span, VM control ops
 * and sampled network frames. Tracing is on when Deno exports (`OTEL_DENO=true`, read once
 * at startup); when off, nothing here is called on the hot path and nothing is allocated.
 *
 * @module
 */

import {
  type Context,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  type Tracer,
} from "@opentelemetry/api";
import type { BlkRequestSpan, BlkTracer } from "./virtio/blk.ts";

/** Name of the tracer the CPU service makes its spans with. */
export const CPU_TRACER_NAME = "@vmesh/cpu";

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: tracing stays off
  }
}

/** True when this process exports spans (Deno's `OTEL_DENO=true`); read once. */
export const TRACING_ENABLED: boolean = /^(true|1)$/i.test(env("OTEL_DENO") ?? "");

/**
 * One in this many network frames is traced (`VMESH_TRACE_SAMPLE_FRAMES`, default 100; 0 or
 * bad: none). Read once.
 */
export const FRAME_SAMPLE_EVERY: number = (() => {
  const n = Number(env("VMESH_TRACE_SAMPLE_FRAMES") ?? "100");
  return Number.isInteger(n) && n > 0 ? n : 0;
})();

/** The CPU service's tracer. */
export function cpuTracer(): Tracer {
  return trace.getTracer(CPU_TRACER_NAME);
}

/** virtio-blk status byte names (virtio 1.2, 5.2.6). */
const BLK_STATUS = ["OK", "IOERR", "UNSUPP"];

/** Name of a virtio-blk status byte, or "DROPPED" for a request a reset abandoned. */
export function blkStatusName(status: number): string {
  return status < 0 ? "DROPPED" : BLK_STATUS[status] ?? `0x${status.toString(16)}`;
}

/**
 * A {@link BlkTracer} making one root span per request (its own trace), or undefined when
 * tracing is off so the device does no tracing work at all.
 */
export function blkTracer(
  vm: string,
  device: string,
  enabled = TRACING_ENABLED,
): BlkTracer | undefined {
  if (!enabled) return undefined;
  return {
    begin(op, sector, bytes): BlkRequestSpan | undefined {
      const span = cpuTracer().startSpan(
        `virtio-blk ${op}`,
        { kind: SpanKind.INTERNAL },
        ROOT_CONTEXT,
      );
      if (!span.isRecording()) return undefined;
      span.setAttributes({
        "vmesh.vm": vm,
        "vmesh.device": device,
        "vmesh.queue": 0,
        "vmesh.op": op,
        "vmesh.sector": sector,
        "vmesh.offset": sector * 512,
        "vmesh.bytes": bytes,
      });
      return {
        context: trace.setSpan(ROOT_CONTEXT, span),
        end(status: number) {
          const name = blkStatusName(status);
          span.setAttribute("vmesh.status", name);
          if (name !== "OK") span.setStatus({ code: SpanStatusCode.ERROR, message: name });
          span.end();
        },
      };
    },
  };
}

/**
 * Runs `fn` inside an INTERNAL span `name` (child of `parent`), ending it when `fn`'s
 * result settles. Without tracing it just calls `fn`.
 */
export function withSpan<T>(
  name: string,
  attributes: Record<string, string>,
  parent: Context | undefined,
  fn: () => T,
  enabled = TRACING_ENABLED,
): T {
  if (!enabled) return fn();
  const span = cpuTracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes }, parent);
  try {
    return fn();
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error)?.message ?? String(e) });
    throw e;
  } finally {
    span.end();
  }
}

/** Starts a root lifecycle span (e.g. `vm boot`), or undefined when tracing is off. */
export function startLifecycleSpan(
  name: string,
  attributes: Record<string, string>,
  enabled = TRACING_ENABLED,
): Span | undefined {
  if (!enabled) return undefined;
  return cpuTracer().startSpan(name, { kind: SpanKind.INTERNAL, attributes }, ROOT_CONTEXT);
}

/**
 * Counts frames and, for one in `every` (0: none), starts a `virtio-net <dir>` span whose
 * context the frame's bus message joins. (Deno's exporter records children of unsampled
 * parents too, so callers send the other frames around the bus's tracing.)
 */
export class FrameSampler {
  #n = 0;
  constructor(
    readonly vm: string,
    readonly device: string,
    readonly every = TRACING_ENABLED ? FRAME_SAMPLE_EVERY : 0,
  ) {}

  /** True when tracing frames at all (otherwise callers skip the sampler entirely). */
  get active(): boolean {
    return this.every > 0;
  }

  /** For a sampled frame, a started span; undefined otherwise. */
  sample(dir: "tx" | "rx", bytes: number): Span | undefined {
    if (this.every <= 0 || ++this.#n % this.every !== 0) return undefined;
    return cpuTracer().startSpan(`virtio-net ${dir}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        "vmesh.vm": this.vm,
        "vmesh.device": this.device,
        "vmesh.op": dir,
        "vmesh.bytes": bytes,
      },
    }, ROOT_CONTEXT);
  }
}
