/**
 * Runs one named build step (an external command) with its output in a log file, showing
 * progress on the way: a line per N compiled files and a periodic "still building" line.
 */

/** A build step that failed; its message names the step and the log to read. */
export class StepError extends Error {
  /** The step's name, e.g. "kernel: make Image". */
  readonly step: string;
  /** The log file holding the step's output, if it had one. */
  readonly logPath?: string;
  constructor(step: string, detail: string, logPath?: string) {
    super(
      `guest build step '${step}' failed: ${detail}${logPath ? `; see log: ${logPath}` : ""}`,
    );
    this.name = "StepError";
    this.step = step;
    this.logPath = logPath;
  }
}

/** Where progress lines go (stderr by default). */
export type Reporter = (line: string) => void;

/** Formats seconds as "2m10s" / "42s". */
export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** Options for {@link runStep}. */
export interface StepOptions {
  /** Step name shown in progress and errors. */
  name: string;
  /** argv; argv[0] is looked up in PATH. */
  cmd: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Appends stdout and stderr here. */
  logPath: string;
  report: Reporter;
  /** Lines matching this count as one unit of progress (e.g. a compiled file). */
  unit?: RegExp;
  /** Print a progress line every this many units (default 200). */
  every?: number;
  /** Print a "still running" line after this long without one (default 30 s). */
  heartbeatMs?: number;
  /** Bytes written to the command's stdin, then closed. */
  stdin?: string;
}

/** Runs the step to completion; throws {@link StepError} on a nonzero exit or spawn failure. */
export async function runStep(o: StepOptions): Promise<void> {
  const started = Date.now();
  const log = await Deno.open(o.logPath, { append: true, create: true });
  const enc = new TextEncoder();
  await log.write(enc.encode(`\n$ ${o.cmd.join(" ")}${o.cwd ? `    (in ${o.cwd})` : ""}\n`));
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(o.cmd[0], {
      args: o.cmd.slice(1),
      cwd: o.cwd,
      env: o.env,
      stdin: o.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  } catch (e) {
    log.close();
    throw new StepError(o.name, `cannot run ${o.cmd[0]}: ${(e as Error).message}`, o.logPath);
  }
  if (o.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(enc.encode(o.stdin)).catch(() => {});
    await w.close().catch(() => {});
  }
  let units = 0;
  let lastLine = Date.now();
  const every = o.every ?? 200;
  const heartbeatMs = o.heartbeatMs ?? 30_000;
  const say = (msg: string) => {
    lastLine = Date.now();
    o.report(`  ${o.name}: ${msg} (${formatElapsed(Date.now() - started)})`);
  };
  const timer = setInterval(() => {
    if (Date.now() - lastLine >= heartbeatMs) {
      say(`still running${o.unit ? `, ${units} files so far` : ""}`);
    }
  }, 1000);
  // Both streams go to the log as they come; only whole lines are matched for progress.
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    let partial = "";
    for await (const chunk of stream) {
      await log.write(chunk);
      if (!o.unit) continue;
      partial += dec.decode(chunk, { stream: true });
      const lines = partial.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        if (o.unit.test(line) && ++units % every === 0) say(`${units} files`);
      }
    }
  };
  let status: Deno.CommandStatus;
  try {
    [, , status] = await Promise.all([pump(child.stdout), pump(child.stderr), child.status]);
  } finally {
    clearInterval(timer);
    log.close();
  }
  if (!status.success) {
    throw new StepError(o.name, `exit status ${status.code}`, o.logPath);
  }
}

/** The last `n` lines of a log file, for showing next to an error. */
export async function logTail(path: string, n = 20): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "";
  }
}
