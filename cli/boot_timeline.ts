/**
 * Where `./vmesh boot`'s start-up time goes: runs `./vmesh boot -v` (all services as processes)
 * RUNS times and prints, for each, the milliseconds from spawn to each step the launcher and the
 * services report (nats-server up, each service spawned and ready, registrations seen, the CPU
 * service ready to start, the guest's first console output, the shell prompt), then the median
 * of each step. A measuring tool, as the benchmarks are: nothing here asserts on time.
 *
 *   deno run -A cli/boot_timeline.ts [RUNS] [-- BOOT FLAGS...]
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { GUEST_PROMPT } from "../guest/mod.ts";

const VMESH = fileURLToPath(new URL("../vmesh", import.meta.url));

/** The steps, in boot order: a label and the first output line that marks it. */
export const STEPS: [string, RegExp][] = [
  ["launcher running", /^vmesh boot: starting VM/],
  ["nats-server up", /^vmesh boot: bus: /],
  ["cpu spawned", /^vmesh boot: started vmesh-cpu /],
  ["console spawned", /^vmesh boot: started vmesh-console /],
  ["disk0 spawned", /^vmesh boot: started vmesh-disk disk0 /],
  ["console ready", /^\[vmesh-console\] vmesh-console ready: /],
  ["disk0 ready", /^\[vmesh-disk disk0\] vmesh-disk ready: /],
  ["registrations seen", /^vmesh boot: services registered: /],
  ["cpu ready", /^\[vmesh-cpu\] vmesh-cpu ready: /],
  ["first guest output", /^vmesh boot: guest: the firmware|^vmesh boot: guest: the Linux/],
  ["shell prompt", /^vmesh boot: guest: the shell prompt appeared/],
];

/** Milliseconds from spawn to each step seen in one run. */
export type Timeline = Map<string, number>;

/** The steps of `lines` (each `[ms, text]`), first match of each. */
export function stepsOf(lines: [number, string][]): Timeline {
  const out: Timeline = new Map();
  for (const [ms, text] of lines) {
    for (const [label, re] of STEPS) if (!out.has(label) && re.test(text)) out.set(label, ms);
  }
  return out;
}

/** One `./vmesh boot -v FLAGS` until the prompt (then its process group is stopped). */
async function once(flags: string[]): Promise<Timeline> {
  const t0 = performance.now();
  const child = new Deno.Command("setsid", {
    args: [VMESH, "boot", "-v", "--timeout", "300", ...flags],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: [number, string][] = [];
  let prompt = false;
  const stop = (signal: Deno.Signal) => {
    try {
      Deno.kill(-child.pid, signal);
    } catch { /* gone */ }
  };
  const kill = setTimeout(() => stop("SIGKILL"), 320_000);
  const read = async (stream: ReadableStream<Uint8Array>, console: boolean) => {
    let rest = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      const ms = performance.now() - t0;
      rest += chunk;
      if (console && !prompt && rest.includes(GUEST_PROMPT)) {
        prompt = true;
        stop("SIGTERM");
      }
      const parts = rest.split("\n");
      rest = parts.pop()!;
      if (!console) { for (const p of parts) lines.push([ms, p.replace(/\r$/, "")]); }
      if (console && rest.length > 256) rest = rest.slice(-256);
    }
  };
  await Promise.all([read(child.stdout, true), read(child.stderr, false), child.status]);
  clearTimeout(kill);
  return stepsOf(lines);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

if (import.meta.main) {
  const dash = Deno.args.indexOf("--");
  const runs = Number(Deno.args[0] && Deno.args[0] !== "--" ? Deno.args[0] : "3");
  const flags = dash >= 0 ? Deno.args.slice(dash + 1) : [];
  const all: Timeline[] = [];
  for (let i = 1; i <= runs; i++) {
    const load = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
    const t = await once(flags);
    all.push(t);
    console.log(
      `run ${i} (load ${load}): ` + [...t].map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", "),
    );
  }
  console.log("median ms from spawn:");
  for (const [label] of STEPS) {
    const xs = all.map((t) => t.get(label)).filter((v) => v !== undefined) as number[];
    if (xs.length) console.log(`  ${label.padEnd(20)} ${median(xs).toFixed(0).padStart(6)}`);
  }
}
