/**
 * Request/reply on one NATS connection without nats.js' `request()`: one inbox subscription
 * per connection (`<inbox>.*`), a reply token per request, and one timer for all pending
 * deadlines. nats.js' `request()` builds three `Error` objects per request (stack traces for
 * async traces and a "cancelled" rejection of the already settled promise) and arms a timer per
 * request: that was the largest cost of the CPU service's disk client (about a fifth of its CPU
 * at queue depth 32, `services/disk/blk_path_bench.ts`).
 *
 * Replies are matched by token; a status-503 reply with no payload is the server's "no
 * responders". A closed connection or subscription fails every request still pending.
 *
 * @module
 */
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";

/** Why a muxed request failed (mapped to a BusError by the caller). */
export type MuxFailure = "timeout" | "no-responders" | "closed";

/** A request that failed in the mux: `kind` says why. */
export class MuxError extends Error {
  constructor(readonly kind: MuxFailure, message: string) {
    super(message);
    this.name = "MuxError";
  }
}

interface Pending {
  resolve(m: Msg): void;
  reject(e: unknown): void;
  /** performance.now() after which the request times out. */
  deadline: number;
}

/** The request multiplexer of one connection. */
export class RequestMux {
  readonly #nc: NatsConnection;
  readonly #inbox: string;
  readonly #pending = new Map<string, Pending>();
  #sub: Subscription | undefined;
  #next = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;

  constructor(nc: NatsConnection) {
    this.#nc = nc;
    // The connection's inbox prefix: a per-user prefix is all a user may subscribe to.
    const prefix = (nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.#inbox = createInbox(prefix);
  }

  /** Requests in flight. */
  get pending(): number {
    return this.#pending.size;
  }

  /**
   * Publishes `data` to `subject` with a reply subject of this mux and resolves with the reply.
   * Rejects with a {@link MuxError} (timeout, no responders, closed) or what `publish` threw.
   */
  request(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<Msg> {
    if (!this.#sub) this.#subscribe();
    const token = (this.#next++).toString(36);
    const deadline = performance.now() + timeoutMs;
    return new Promise<Msg>((resolve, reject) => {
      try {
        this.#nc.publish(subject, data, { reply: `${this.#inbox}.${token}`, headers });
      } catch (e) {
        reject(e);
        return;
      }
      this.#pending.set(token, { resolve, reject, deadline });
      if (deadline < this.#timerAt) this.#arm(deadline);
    });
  }

  #subscribe(): void {
    const sub = this.#nc.subscribe(`${this.#inbox}.*`, {
      callback: (err, msg) => {
        if (err) return this.#failAll(err);
        this.#deliver(msg);
      },
    });
    this.#sub = sub;
    sub.closed.then(
      () => this.#closed(sub, "the connection closed"),
      (e) => this.#closed(sub, `${(e as Error)?.message ?? e}`),
    );
  }

  #closed(sub: Subscription, why: string): void {
    if (this.#sub === sub) this.#sub = undefined;
    this.#failAll(new MuxError("closed", why));
  }

  #deliver(msg: Msg): void {
    const s = msg.subject;
    const token = s.slice(s.lastIndexOf(".") + 1);
    const p = this.#pending.get(token);
    if (!p) return; // late (timed out) or a stray
    this.#settled(token);
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      p.reject(new MuxError("no-responders", "no responders"));
    } else p.resolve(msg);
  }

  #settled(token: string): void {
    this.#pending.delete(token);
    if (this.#pending.size === 0) this.#disarm();
  }

  #failAll(e: unknown): void {
    const all = [...this.#pending.values()];
    this.#pending.clear();
    this.#disarm();
    for (const p of all) p.reject(e);
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, at - performance.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  /** Times out what is past its deadline; re-arms for the earliest left. */
  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    const late: Pending[] = [];
    for (const [token, p] of this.#pending) {
      if (p.deadline <= now + 0.5) {
        this.#pending.delete(token);
        late.push(p);
      } else if (p.deadline < next) next = p.deadline;
    }
    if (next !== Infinity) this.#arm(next);
    for (const p of late) p.reject(new MuxError("timeout", "timed out"));
  }
}

const muxes = new WeakMap<NatsConnection, RequestMux>();

/** The request mux of `nc` (made on first use). */
export function requestMux(nc: NatsConnection): RequestMux {
  let m = muxes.get(nc);
  if (!m) {
    m = new RequestMux(nc);
    muxes.set(nc, m);
  }
  return m;
}
