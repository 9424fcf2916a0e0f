/**
 * Test helper: runs a Deno script as a child process and collects its stdout JSON
 * lines (events) and stderr lines, so multi-process tests can wait for events.
 */

const DENO = Deno.execPath();
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

/** One JSON object the child printed on a stdout line. */
export type Event = Record<string, unknown> & { event?: string };

/** A running child Deno process. */
export class ServiceProcess {
  readonly child: Deno.ChildProcess;
  readonly events: Event[] = [];
  readonly stderrLines: string[] = [];
  readonly #done: Promise<void>;
  #waiters: (() => void)[] = [];

  private constructor(child: Deno.ChildProcess) {
    this.child = child;
    this.#done = Promise.all([
      this.#read(child.stdout, (l) => {
        try {
          this.events.push(JSON.parse(l));
        } catch {
          this.events.push({ event: "text", text: l });
        }
      }),
      this.#read(child.stderr, (l) => this.stderrLines.push(l)),
    ]).then(() => {});
  }

  /** Starts `script` (a file URL or path) with extra env. */
  static start(script: string | URL, env: Record<string, string> = {}): ServiceProcess {
    const path = script instanceof URL ? script.pathname : script;
    const child = new Deno.Command(DENO, {
      args: ["run", "-A", "--quiet", "--config", CONFIG, path],
      env: { NO_COLOR: "1", ...env },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return new ServiceProcess(child);
  }

  async #read(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
        this.#wake();
      }
    }
    if (buf) onLine(buf);
    this.#wake();
  }

  #wake() {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /**
   * Resolves with the first event matching `pred`; rejects if the child's output
   * ends first or after `limitMs` (a hang guard, not a timing assertion).
   */
  async waitFor(pred: (e: Event) => boolean, limitMs = 30_000): Promise<Event> {
    const until = Date.now() + limitMs;
    let ended = false;
    this.#done.then(() => ended = true);
    while (true) {
      const e = this.events.find(pred);
      if (e) return e;
      if (ended) {
        throw new Error(`child ended without the event; stderr: ${this.stderrLines.join(" | ")}`);
      }
      if (Date.now() > until) throw new Error("child did not report the event in time");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        timer = setTimeout(r, 200);
      });
      clearTimeout(timer);
    }
  }

  /** Sends a signal (if running), waits for exit and for all output. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already exited */ }
    return await this.wait();
  }

  /** Waits for exit and for all output. */
  async wait(): Promise<Deno.CommandStatus> {
    const status = await this.child.status;
    await this.#done;
    return status;
  }
}
