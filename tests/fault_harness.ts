/**
 * Fault tests' view of a running `./vmesh boot -v ARGS -- COMMAND`: the launcher's stderr
 * line by line (process ids, restarts), the guest's console as it is written (a log file),
 * waits on both, and the end of the run with the command's output.
 * @module
 */

import { parseBatchOutput } from "../guest/mod.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** A `./vmesh boot` in batch mode, watched while it runs. */
export interface WatchedBoot {
  /** Launcher stderr lines so far. */
  readonly stderr: string[];
  /** Guest console text so far (read from the console log file). */
  console(): string;
  /** Resolves with the first match of `re` in the launcher's stderr lines seen after `from`. */
  waitStderr(re: RegExp, from?: number, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves with the first match of `re` in the console text. */
  waitConsole(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolves once `test(console text)` holds. */
  waitUntil(what: string, test: (console: string) => boolean, timeoutMs?: number): Promise<void>;
  /** The launcher's exit code, its stdout and the parsed batch output (null: unfinished). */
  readonly done: Promise<{ code: number; stdout: string; output: string | null; rc: number }>;
  /** SIGKILLs the launcher (its children follow through their lifelines), or sends `signal`. */
  kill(signal?: Deno.Signal): void;
}

/** How long a wait may take before the test fails (generous: a loaded 2-core machine). */
const WAIT_MS = 120_000;

async function poll<T>(
  get: () => T | null,
  timeoutMs: number,
  what: string,
  context: () => string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = get();
    if (v !== null) return v;
    if (Date.now() > until) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${context()}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Starts `./vmesh boot -v --console log:<dir>/console-<id>.log ARGS -- COMMAND` (`dir` must exist).
 */
export function watchBoot(
  dir: string,
  args: string[],
  command: string,
  env: Record<string, string> = {},
): WatchedBoot {
  // A file of its own: the console service appends to an existing log.
  const log = `${dir}/console-${crypto.randomUUID().slice(0, 8)}.log`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      MAIN,
      "boot",
      "-v",
      "--console",
      `log:${log}`,
      ...args,
      "--",
      command,
    ],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr: string[] = [];
  const reading = (async () => {
    let rest = "";
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      rest += chunk;
      let nl;
      while ((nl = rest.indexOf("\n")) >= 0) {
        stderr.push(rest.slice(0, nl).replace(/\r$/, ""));
        rest = rest.slice(nl + 1);
      }
    }
    if (rest) stderr.push(rest);
  })();
  const stdout = new Response(child.stdout).text();
  let text = "";
  const consoleText = () => {
    try {
      text = Deno.readTextFileSync(log);
    } catch { /* not written yet */ }
    return text;
  };
  const context = () =>
    `launcher stderr (last lines):\n${stderr.slice(-25).join("\n")}\nconsole (end):\n${
      consoleText().slice(-1500)
    }`;
  const done = (async () => {
    const status = await child.status;
    await reading;
    const out = await stdout;
    const batch = parseBatchOutput(consoleText());
    return {
      code: status.code,
      stdout: out,
      output: batch?.output ?? null,
      rc: batch?.status ?? -1,
    };
  })();
  return {
    stderr,
    console: consoleText,
    waitStderr: (re, from = 0, timeoutMs = WAIT_MS) =>
      poll(
        () => {
          for (let i = from; i < stderr.length; i++) {
            const m = stderr[i].match(re);
            if (m) return m;
          }
          return null;
        },
        timeoutMs,
        `${re} on the launcher's stderr`,
        context,
      ),
    waitConsole: (re, timeoutMs = WAIT_MS) =>
      poll(() => consoleText().match(re), timeoutMs, `${re} on the guest console`, context),
    waitUntil: (what, test, timeoutMs = WAIT_MS) =>
      poll(() => test(consoleText()) ? true : null, timeoutMs, what, context).then(() => {}),
    done,
    kill: (signal = "SIGKILL") => {
      try {
        child.kill(signal);
      } catch { /* gone */ }
    },
  };
}

/** `e2fsck -fn IMAGE`: its exit code (0: clean) and output. */
export async function e2fsck(image: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("e2fsck", {
    args: ["-fn", image],
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/**
 * A guest shell function: `w NAME N` writes N files /mnt/w/NAME1.. of 64 KiB with fsync, printing
 * `ok FILE MD5` for each (read by {@link completedWrites}) or `FAIL FILE` and returning 1.
 */
export const GUEST_WRITER = "w() { i=0; while [ $i -lt $2 ]; do i=$((i+1)); f=/mnt/w/$1$i; " +
  "dd if=/dev/urandom of=$f bs=16k count=4 conv=fsync 2>/dev/null || { echo FAIL $1$i; return 1; }; " +
  "echo ok $1$i $(md5sum < $f | cut -c1-32); done; }";

/** Every `ok NAME MD5` line a guest printed: what it saw written and fsynced. */
export function completedWrites(console: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of console.matchAll(/^ok (\S+) ([0-9a-f]{32})\r?$/gm)) out.set(m[1], m[2]);
  return out;
}

/** Kernel log lines that mean an I/O error reached the guest. */
export const GUEST_IO_ERROR =
  /I\/O error|EXT4-fs error|Buffer I\/O|blk_update_request|Aborting journal/;

/** Adds `boot` to `list` (so a test's finally can kill what is still running) and returns it. */
export function track(list: WatchedBoot[], boot: WatchedBoot): WatchedBoot {
  list.push(boot);
  return boot;
}
