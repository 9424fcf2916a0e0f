// The web terminal console backend in a real headless Chromium: the page (xterm.js from
// the npm package) shows guest output from the bus, and keys typed into it reach the
// guest over the console service and come back as output.
import assert from "node:assert/strict";
import { startEmbeddedNats } from "@vmesh/bus";
import { WebTerminalSink } from "../services/console/web_terminal.ts";
import { startService } from "./services_harness.ts";
import {
  type BrowserContext,
  chromiumMissing,
  launchChromium,
  terminalShows,
} from "./headless_chromium.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// A stand-in guest on the console subjects: prints a prompt, echoes keys, and answers
// each line with "you typed: <line>"; reports the lines it got on stdout.
const GUEST = `
import { connect, consoleMsgs, consoleSubject } from "@vmesh/bus";
const vm = Deno.env.get("VM");
const bus = await connect({ name: "fake-guest" });
let seq = 0;
const out = (s) => {
  const data = new TextEncoder().encode(s);
  bus.publish(consoleMsgs.byteBatch, consoleSubject(vm, "out"), { seq, data });
  seq += data.length;
};
let line = "";
bus.subscribe(consoleMsgs.byteBatch, consoleSubject(vm, "in"), ({ data }) => {
  for (const ch of new TextDecoder().decode(data)) {
    if (ch === "\\r") {
      console.log(JSON.stringify({ line }));
      out("\\r\\nyou typed: " + line + "\\r\\nguest$ ");
      line = "";
    } else {
      line += ch;
      out(ch);
    }
  }
});
await bus.flush();
out("vmesh fake guest\\r\\nguest$ ");
await bus.flush();
console.log(JSON.stringify({ ready: true }));
await new Promise(() => {});
`;

async function readLines(
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
  onLine: (l: string) => void,
) {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  }
}

Deno.test("web terminal: a command typed in headless Chromium reaches the guest and its output comes back", async () => {
  const missing = await chromiumMissing();
  assert.ok(!missing, missing);
  const nats = await startEmbeddedNats();
  // The real console service process with the web backend on a free port.
  const consoleProc = await startService("console", ["--vm", "vmW", "--backend", "web:0"], nats.url)
    .catch(async (e) => {
      await nats.stop();
      throw e;
    });
  const pageUrl = consoleProc.log.map((l) => / web terminal: (\S+)/.exec(l)?.[1]).find((u) => u);

  const guest = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", GUEST],
    cwd: ROOT,
    env: { NATS_URL: nats.url, VM: "vmW", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  let onReady = () => {};
  const ready = new Promise<void>((r) => onReady = r);
  const reading = readLines(guest.stdout, (l) => {
    const msg = JSON.parse(l);
    if (msg.ready) onReady();
    if (typeof msg.line === "string") lines.push(msg.line);
  });
  const userDataDir = await Deno.makeTempDir({ prefix: "vmesh-chromium-" });
  let browser: BrowserContext | undefined;
  try {
    const first = await Promise.race([ready.then(() => 0), guest.status.then((s) => s.code)]);
    assert.equal(first, 0, "fake guest exited before ready");
    browser = await launchChromium(userDataDir);
    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    assert.ok(pageUrl, consoleProc.log.join("\n"));
    await page.goto(pageUrl);
    const screen = () =>
      page.evaluate(() => {
        // deno-lint-ignore no-explicit-any
        const b = (globalThis as any).vmeshTerm.buffer.active;
        const rows: string[] = [];
        for (let i = 0; i < b.length; i++) rows.push(b.getLine(i).translateToString(true));
        return rows.join("\n");
      });
    const shows = (text: string) => terminalShows(page, text, 60_000);
    // Output from before the page opened is replayed from the scrollback.
    await shows("vmesh fake guest");
    assert.equal(await page.textContent("#status"), "connected");
    assert.equal(await page.textContent("#vm"), "vmW");

    await page.click("#term");
    await page.keyboard.type("uname -a");
    await page.keyboard.press("Enter");
    await shows("you typed: uname -a");
    assert.deepEqual(lines, ["uname -a"]);
    const text = await screen();
    assert.match(text, /guest\$ uname -a\nyou typed: uname -a\nguest\$/);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser?.close();
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    guest.kill("SIGTERM");
    await guest.status;
    await reading.catch(() => {});
    assert.equal(await consoleProc.stop(), 0, consoleProc.log.join("\n"));
    await nats.stop();
  }
  // Nothing was lost or failed on the console's side.
  assert.ok(!consoleProc.log.some((l) => /lost|failed/.test(l)), consoleProc.log.join("\n"));
});

Deno.test("web terminal: assets come from the npm package; bad requests get JSON errors", async () => {
  const web = await WebTerminalSink.open({ port: 0 }, "vmX");
  try {
    const get = async (path: string, init?: RequestInit) => {
      const r = await fetch(new URL(path, web.url), init);
      return { status: r.status, type: r.headers.get("content-type") ?? "", text: await r.text() };
    };
    const js = await get("xterm.js");
    assert.equal(js.status, 200);
    assert.match(js.type, /javascript/);
    assert.match(js.text, /Terminal/);
    assert.match((await get("xterm.css")).text, /\.xterm/);
    assert.match((await get("/")).text, /<div id="term">/);
    const plain = await get("ws");
    assert.equal(plain.status, 400);
    assert.match(JSON.parse(plain.text).error, /WebSocket/);
    assert.equal((await get("nope")).status, 404);
    // A socket that sends an oversized frame is closed; the sink keeps serving.
    const ws = new WebSocket(new URL("ws", web.url.replace("http", "ws")));
    const closed = new Promise<number>((resolve) => ws.onclose = (e) => resolve(e.code));
    await new Promise((resolve) => ws.onopen = resolve);
    ws.send(new Uint8Array(64 * 1024));
    assert.equal(await closed, 1009);
    assert.equal((await get("/")).status, 200);
  } finally {
    await web.close();
  }
});
