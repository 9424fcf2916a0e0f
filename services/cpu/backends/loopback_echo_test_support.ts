/**
 * A loopback TCP echo standing for a NATS socket, for tests and benches of whether the CPU's main
 * thread lets sockets progress (tests and benches only).
 *
 * @example
 * ```ts
 * const echo = await startLoopbackEcho();
 * await echo.roundTrip();
 * await echo.close();
 * ```
 * @module
 */

/** A connected echo: `roundTrip()` sends 8 bytes and reads them back. */
export interface LoopbackEcho {
  roundTrip(): Promise<void>;
  close(): Promise<void>;
}

/** Starts an echo server on 127.0.0.1 and connects one client to it. */
export async function startLoopbackEcho(): Promise<LoopbackEcho> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serve = (async () => {
    for await (const c of listener) {
      (async () => {
        const b = new Uint8Array(64);
        try {
          for (;;) {
            const n = await c.read(b);
            if (n === null) break;
            await c.write(b.subarray(0, n));
          }
        } catch { /* closed */ }
        try {
          c.close();
        } catch { /* already closed */ }
      })();
    }
  })();
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const b = new Uint8Array(8);
  return {
    async roundTrip() {
      await conn.write(b);
      await conn.read(b);
    },
    async close() {
      conn.close();
      listener.close();
      await serve.catch(() => {});
    },
  };
}
