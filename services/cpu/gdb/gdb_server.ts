/**
 * The TCP side of the GDB stub (QEMU's `-gdb tcp:HOST:PORT`): listens, serves one client at a
 * time, frames and acknowledges packets (until QStartNoAckMode), and feeds them to a GdbStub.
 * A second client while one is attached is refused, as QEMU does.
 */
import { encodePacket, RspReader } from "./rsp_packet.ts";
import type { GdbStub } from "./gdb_stub.ts";

/** A parsed `tcp:HOST:PORT` address. */
export interface GdbAddress {
  hostname: string;
  port: number;
}

/**
 * Parses QEMU's `-gdb` device syntax: `tcp:HOST:PORT`, `tcp::PORT` (all interfaces) or a bare
 * `:PORT` / `PORT`; port 0 picks a free one (see `GdbServer.addr`). Returns an error message
 * for anything else.
 *
 * @example
 * ```ts
 * parseGdbAddress("tcp::1234"); // { hostname: "0.0.0.0", port: 1234 }
 * ```
 */
export function parseGdbAddress(spec: string): GdbAddress | string {
  const m = /^(?:tcp:)?(?:(\[[^\]]*\]|[^:]*):)?(\d+)$/.exec(spec);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) {
    return `--gdb needs tcp:HOST:PORT (e.g. tcp:127.0.0.1:1234 or tcp::1234), got '${spec}'`;
  }
  const host = m[1] ?? "";
  return { hostname: host === "" ? "0.0.0.0" : host.replace(/^\[|\]$/g, ""), port };
}

/**
 * Serves `stub` on `addr` until `close()`.
 *
 * @example
 * ```ts
 * declare const stub: GdbStub;
 * const server = new GdbServer(stub, { hostname: "127.0.0.1", port: 1234 });
 * server.close();
 * ```
 */
export class GdbServer {
  readonly addr: Deno.NetAddr;
  #listener: Deno.Listener;
  #stub: GdbStub;
  #client: Deno.Conn | undefined;
  #closed = false;
  /** The client's queued writes (close waits for them: the exit reply must get out). */
  #writes: Promise<void> = Promise.resolve();

  /** Listens now (throws Deno errors such as AddrInUse); clients are served in the background. */
  constructor(stub: GdbStub, addr: GdbAddress) {
    this.#stub = stub;
    this.#listener = Deno.listen({ hostname: addr.hostname, port: addr.port, transport: "tcp" });
    this.addr = this.#listener.addr as Deno.NetAddr;
    this.#accept();
  }

  async #accept(): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      if (this.#client) {
        conn.close();
        continue;
      }
      this.#client = conn;
      this.#serve(conn).finally(() => {
        if (this.#client === conn) this.#client = undefined;
      });
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const reader = new RspReader();
    let acks = true;
    const write = (s: string) => {
      const bytes = Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
      // In order, one after another; a dead socket is the read loop's business (it ends too).
      this.#writes = this.#writes.then(async () => {
        try {
          let off = 0;
          while (off < bytes.length) off += await conn.write(bytes.subarray(off));
        } catch { /* the read loop sees the disconnect */ }
      });
    };
    this.#stub.connect((payload) => write(encodePacket(payload)));
    const buf = new Uint8Array(4096);
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        for (const ev of reader.feed(buf.subarray(0, n))) {
          if (ev.kind === "interrupt") this.#stub.interrupt();
          else if (ev.kind === "bad-checksum") {
            if (acks) write("-");
          } else if (ev.kind === "packet") {
            if (acks) write("+");
            if (ev.payload === "QStartNoAckMode") {
              this.#stub.handlePacket(ev.payload);
              acks = false;
            } else this.#stub.handlePacket(ev.payload);
          }
        }
        if (this.#client !== conn) break; // detached or killed
      }
    } catch { /* connection reset: same as a close */ }
    try {
      conn.close();
    } catch { /* already closed */ }
    if (this.#client === conn) {
      this.#client = undefined;
      this.#stub.disconnect();
    }
  }

  /** Sends what is queued, drops the client (the stub is told) and stops listening. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    await this.#writes;
    const c = this.#client;
    this.#client = undefined;
    if (c) {
      this.#stub.disconnect();
      try {
        c.close();
      } catch { /* already closed */ }
    }
  }
}
