/**
 * Web terminal backend: serves a page with xterm.js (from the npm package, no CDN) and
 * bridges it over a WebSocket: guest output goes to every open page as binary frames,
 * keys typed in any page come back as input bytes. A newly opened page first gets the
 * recent output (a 64 KiB scrollback), so it shows the current screen.
 *
 *   const web = await WebTerminalSink.open({ port: 0 }, "vm1");
 *   web.readInput({ keys: (bytes) => console_.type(bytes) });
 *   // open web.url in a browser
 * @module
 */

import { createRequire } from "node:module";
import { Hono } from "hono";
import { type ListenOptions, parseHttpListen } from "@vmesh/bus";
import type { ConsoleSink } from "./console_sink.ts";

/** Bytes of recent output replayed to a page that connects. */
export const SCROLLBACK_BYTES = 64 * 1024;
/** Largest input frame accepted from a page; a bigger one closes that socket. */
export const MAX_INPUT_FRAME = 16 * 1024;
/** Pages served at once; more get 503. */
export const MAX_CLIENTS = 16;

/** Where keys typed in the page go. */
export interface WebTerminalInput {
  keys(bytes: Uint8Array): void;
}

const WEB_DIR = new URL("./web/", import.meta.url);

/** The xterm.js files from the npm package (installed by Deno's node_modules handling). */
async function xtermFile(rel: string): Promise<Uint8Array<ArrayBuffer>> {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("@xterm/xterm/package.json");
  } catch {
    // Not installed yet: importing it once makes Deno install it into node_modules. The
    // specifier is computed so xterm's DOM typings stay out of `deno check`.
    await import(["@xterm", "xterm"].join("/"));
    pkg = require.resolve("@xterm/xterm/package.json");
  }
  return await Deno.readFile(new URL(rel, `file://${pkg}`));
}

/** Parses the `web:` backend spec's address: `[HOST:]PORT` (PORT 0 = any free port). */
export function parseWebSpec(spec: string): ListenOptions {
  const listen = parseHttpListen(spec);
  if (!listen) throw new RangeError(`web backend needs [HOST:]PORT, got '${spec}'`);
  return listen;
}

/** The web terminal console backend. */
export class WebTerminalSink implements ConsoleSink {
  readonly name: string;
  readonly #clients = new Set<WebSocket>();
  #scrollback: Uint8Array[] = [];
  #scrollbackBytes = 0;
  #input?: WebTerminalInput;
  readonly #ac: AbortController;

  private constructor(
    readonly url: string,
    readonly port: number,
    readonly server: Deno.HttpServer<Deno.NetAddr>,
    ac: AbortController,
  ) {
    this.name = `web:${url}`;
    this.#ac = ac;
  }

  /** Serves the page on `listen` (default 127.0.0.1, port 0 = free) for VM `vm`. */
  static async open(listen: ListenOptions, vm = ""): Promise<WebTerminalSink> {
    const assets = {
      "/": ["text/html; charset=utf-8", await Deno.readFile(new URL("index.html", WEB_DIR))],
      "/terminal.js": ["text/javascript", await Deno.readFile(new URL("terminal.js", WEB_DIR))],
      "/xterm.js": ["text/javascript", await xtermFile("lib/xterm.js")],
      "/xterm.css": ["text/css", await xtermFile("css/xterm.css")],
    } as const;
    const app = new Hono();
    // The routes need the sink, which needs the bound server: filled in below.
    const ref: { sink?: WebTerminalSink } = {};
    for (const [path, [type, body]] of Object.entries(assets)) {
      app.get(path, () => new Response(body, { headers: { "content-type": type } }));
    }
    app.get("/ws", (c) => {
      const sink = ref.sink;
      if (!sink) return c.json({ error: "starting" }, 503);
      if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
        return c.json({ error: "expected a WebSocket upgrade" }, 400);
      }
      if (sink.#clients.size >= MAX_CLIENTS) return c.json({ error: "too many pages" }, 503);
      const { socket, response } = Deno.upgradeWebSocket(c.req.raw);
      sink.#attach(socket, vm);
      return response;
    });
    app.notFound((c) => c.json({ error: "not found" }, 404));
    app.onError((err, c) => c.json({ error: err.message }, 500));
    const ac = new AbortController();
    const hostname = listen.hostname ?? "127.0.0.1";
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve(
        { port: listen.port, hostname, signal: ac.signal, onListen: () => {} },
        app.fetch,
      );
    } catch (e) {
      throw new Error(`web terminal: cannot listen on ${hostname}:${listen.port}: ${e}`);
    }
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    const url = `http://${host}:${server.addr.port}/`;
    ref.sink = new WebTerminalSink(url, server.addr.port, server, ac);
    return ref.sink;
  }

  /** Sends keys typed in any page to `input`. */
  readInput(input: WebTerminalInput): void {
    this.#input = input;
  }

  /** Pages connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  write(bytes: Uint8Array): Promise<void> {
    if (bytes.length === 0) return Promise.resolve();
    const copy = bytes.slice();
    this.#scrollback.push(copy);
    this.#scrollbackBytes += copy.length;
    while (this.#scrollbackBytes > SCROLLBACK_BYTES && this.#scrollback.length > 1) {
      this.#scrollbackBytes -= this.#scrollback.shift()!.length;
    }
    for (const ws of this.#clients) {
      // A page that cannot keep up (closing, slow) is dropped, not waited for.
      try {
        if (ws.readyState === WebSocket.OPEN) ws.send(copy);
      } catch {
        this.#clients.delete(ws);
      }
    }
    return Promise.resolve();
  }

  async close(): Promise<void> {
    for (const ws of this.#clients) {
      try {
        ws.close(1001, "console closing");
      } catch { /* already closed */ }
    }
    this.#clients.clear();
    this.#ac.abort();
    await this.server.finished;
  }

  #attach(ws: WebSocket, vm: string): void {
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      this.#clients.add(ws);
      ws.send(JSON.stringify({ vm }));
      for (const chunk of this.#scrollback) ws.send(chunk);
    };
    ws.onmessage = (ev) => {
      const bytes = typeof ev.data === "string"
        ? new TextEncoder().encode(ev.data)
        : new Uint8Array(ev.data as ArrayBuffer);
      if (bytes.length > MAX_INPUT_FRAME) {
        ws.close(1009, `input frame over ${MAX_INPUT_FRAME} bytes`);
        return;
      }
      try {
        this.#input?.keys(bytes);
      } catch { /* the console reports its own failures; a page never breaks it */ }
    };
    ws.onclose = () => this.#clients.delete(ws);
    ws.onerror = () => this.#clients.delete(ws);
  }
}
