/**
 * A TCP forwarder for the container tests: listens on one host address (the podman network's
 * gateway, which containers reach as host.containers.internal) and relays each connection to a
 * loopback port, such as the test OTLP receiver's, which containers cannot reach directly.
 *
 * ```ts
 * await using fwd = forwardTcp("10.89.0.1", 43117);
 * // containers export to http://host.containers.internal:${fwd.port}
 * ```
 * @module
 */

/** A running forwarder. */
export interface TcpForward extends AsyncDisposable {
  /** The listening port on `hostname`. */
  readonly port: number;
  /** Connections relayed so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Relays connections to `hostname:(free port)` to `127.0.0.1:targetPort`. */
export function forwardTcp(hostname: string, targetPort: number): TcpForward {
  const listener = Deno.listen({ hostname, port: 0 });
  const open = new Set<Deno.Conn>();
  const relays = new Set<Promise<void>>();
  let connections = 0;
  const relay = async (inbound: Deno.Conn) => {
    let outbound: Deno.Conn | undefined;
    try {
      outbound = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      open.add(outbound);
      // Either side closing ends both directions; errors are a closed peer, not a test failure.
      await Promise.race([
        inbound.readable.pipeTo(outbound.writable).catch(() => {}),
        outbound.readable.pipeTo(inbound.writable).catch(() => {}),
      ]);
    } catch {
      // The target refused: the inbound side sees its connection closed.
    } finally {
      for (const c of [inbound, outbound]) {
        if (c && open.delete(c)) {
          try {
            c.close();
          } catch { /* already closed by pipeTo */ }
        }
      }
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        connections++;
        open.add(conn);
        const p = relay(conn);
        relays.add(p);
        p.finally(() => relays.delete(p));
      }
    } catch {
      // The listener was closed.
    }
  })();
  const close = async () => {
    try {
      listener.close();
    } catch { /* closed */ }
    for (const c of open) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    open.clear();
    await accepting;
    await Promise.all(relays);
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get connections() {
      return connections;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
