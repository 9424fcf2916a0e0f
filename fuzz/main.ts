/**
 * `deno task fuzz [--target NAME] [--seed N] [--inputs N] [--time SECONDS] [--corpus DIR]
 * [--limit-ms MS]`: runs each target in a worker from where the corpus state says it stopped,
 * prints inputs/s per target and in total, and keeps every input that broke something in
 * fuzz/regressions/<target>/.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { targetNamed, TARGETS } from "./mod.ts";
import { inputAt } from "./run_input.ts";
import { REGRESSIONS_DIR, saveRegression } from "./regressions.ts";
import type { FuzzTarget } from "./target.ts";
import { Slot, type WorkerReport, type WorkOrder } from "./worker.ts";

const HELP = `Usage: deno task fuzz [options]

Runs the fuzz targets over the real parsers and devices (see fuzz/README.md).

Options:
  --target NAME    only this target (repeatable); one of: ${TARGETS.map((t) => t.name).join(", ")}
  --seed N         seed of a new corpus (default 1); a corpus keeps the seed it was made with
  --inputs N       at most N more inputs per target
  --time SECONDS   total time, shared evenly by the targets (default 60 without --inputs)
  --corpus DIR     where the position of each target is kept and resumed (default .vmesh/fuzz)
  --limit-ms MS    an input running longer is a hang (default 5000)
  -h, --help       this text
`;

/** What the corpus dir keeps: the seed and how far each target got. */
interface State {
  seed: number;
  next: Record<string, number>;
  tried: Record<string, number>;
  seconds: Record<string, number>;
}

function fail(message: string): never {
  console.error(`fuzz: ${message}`);
  Deno.exit(2);
}

function positive(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) fail(`${flag} wants a positive number, not ${v}`);
  return n;
}

function loadState(path: string, seed: number | undefined): State {
  try {
    const s = JSON.parse(Deno.readTextFileSync(path)) as State;
    if (seed !== undefined && seed !== s.seed) {
      fail(
        `${path} was made with --seed ${s.seed}; give that seed, or another --corpus for a new one`,
      );
    }
    return s;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) {
      fail(`cannot read ${path}: ${(e as Error).message} (delete it to start over)`);
    }
    return { seed: seed ?? 1, next: {}, tried: {}, seconds: {} };
  }
}

/** One failure per distinct error (kind, first line without numbers, first stack frame). */
function signature(kind: string, error: string): string {
  const lines = error.split("\n");
  const frame = lines.find((l) => l.trim().startsWith("at ")) ?? "";
  return `${kind}|${lines[0].replace(/0x[0-9a-f]+|\d+/gi, "#")}|${frame.trim()}`;
}

function knownSignatures(target: string): Set<string> {
  const out = new Set<string>();
  try {
    for (const e of Deno.readDirSync(new URL(`${target}/`, REGRESSIONS_DIR))) {
      if (!e.name.endsWith(".txt")) continue;
      const text = Deno.readTextFileSync(new URL(`${target}/${e.name}`, REGRESSIONS_DIR));
      const [head, ...rest] = text.split("\n");
      const kind = head.startsWith("hang")
        ? "hang"
        : head.startsWith("crash")
        ? "crash"
        : "exception";
      out.add(signature(kind, rest.join("\n")));
    }
  } catch { /* no cases yet */ }
  return out;
}

interface Tally {
  inputs: number;
  accepted: number;
  rejected: number;
  failures: number;
  kept: string[];
  seconds: number;
}

/** Runs `target` from `state.next` until `until` or `count` inputs, restarting after hangs. */
async function fuzzTarget(
  target: FuzzTarget,
  state: State,
  count: number,
  until: number,
  limitMs: number,
  saveState: () => void,
): Promise<Tally> {
  await target.init?.(); // the parent rebuilds hanging inputs itself
  const tally: Tally = { inputs: 0, accepted: 0, rejected: 0, failures: 0, kept: [], seconds: 0 };
  const seen = knownSignatures(target.name);
  const t0 = performance.now();
  const end = (state.next[target.name] ?? 0) + count;
  const keep = async (index: number, kind: string, error: string, input: Uint8Array) => {
    tally.failures++;
    const sig = signature(kind, error);
    if (seen.has(sig)) return;
    seen.add(sig);
    const path = await saveRegression(
      target.name,
      input,
      `${kind} at input ${index} of seed ${state.seed}\n${error}`,
    );
    tally.kept.push(path);
    console.log(
      `  ${target.name}: ${kind} at input ${index}: ${error.split("\n")[0]}\n    kept ${path}`,
    );
  };
  while ((state.next[target.name] ?? 0) < end && Date.now() < until) {
    const start = state.next[target.name] ?? 0;
    const progress = new SharedArrayBuffer(16);
    const p = new Int32Array(progress);
    const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    const pending: Promise<void>[] = [];
    const triedBefore = state.tried[target.name] ?? 0;
    let stop: "done" | "hang" | "crash" | undefined;
    let crash = "";
    let dog: ReturnType<typeof setInterval> | undefined;
    const finished = new Promise<void>((resolve) => {
      worker.onmessage = (e: MessageEvent<WorkerReport>) => {
        const m = e.data;
        if (m.type === "failure") pending.push(keep(m.index, m.kind, m.error, m.input));
        else (stop = "done", resolve());
      };
      worker.onerror = (e) => {
        e.preventDefault();
        crash = `uncaught in the worker: ${e.message}\n    at ${e.filename}:${e.lineno}`;
        stop = "crash";
        resolve();
      };
      // Watchdog: the input in progress has not finished within the limit (plus slack).
      let last = -1, since = Date.now();
      dog = setInterval(() => {
        const done = Atomics.load(p, Slot.Finished);
        if (done !== last) (last = done, since = Date.now());
        else if (Atomics.load(p, Slot.Started) > done && Date.now() - since > limitMs + 1000) {
          stop = "hang";
          resolve();
        }
        state.next[target.name] = start + done;
        state.tried[target.name] = triedBefore + done;
        saveState();
      }, 250);
      const order: WorkOrder = {
        target: target.name,
        seed: state.seed,
        start,
        end,
        until,
        limitMs,
        progress,
      };
      worker.postMessage(order);
    });
    await finished;
    clearInterval(dog);
    worker.terminate();
    await Promise.all(pending);
    const done = Atomics.load(p, Slot.Finished);
    state.tried[target.name] = triedBefore + done;
    tally.inputs += done;
    tally.accepted += Atomics.load(p, Slot.Accepted);
    tally.rejected += Atomics.load(p, Slot.Rejected);
    state.next[target.name] = start + done;
    if (stop === "hang" || stop === "crash") {
      const index = start + done;
      const why = stop === "hang" ? `input ${index} ran past ${limitMs} ms (worker ended)` : crash;
      await keep(index, stop, why, inputAt(target, state.seed, index));
      state.next[target.name] = index + 1; // go on after the input that broke it
      state.tried[target.name] = (state.tried[target.name] ?? 0) + 1;
      tally.inputs++;
    }
    saveState();
  }
  tally.seconds = (performance.now() - t0) / 1000;
  state.seconds[target.name] = (state.seconds[target.name] ?? 0) + tally.seconds;
  saveState();
  return tally;
}

async function main(): Promise<void> {
  let args;
  try {
    args = parseArgs({
      args: Deno.args,
      options: {
        target: { type: "string", multiple: true },
        seed: { type: "string" },
        inputs: { type: "string" },
        time: { type: "string" },
        corpus: { type: "string" },
        "limit-ms": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    fail(`${(e as Error).message} (see --help)`);
  }
  if (args.help) return void console.log(HELP);
  const targets = (args.target ?? []).length
    ? args.target!.map((n) => {
      try {
        return targetNamed(n);
      } catch (e) {
        fail((e as Error).message);
      }
    })
    : [...TARGETS];
  const seedArg = args.seed === undefined ? undefined : Number(args.seed);
  if (seedArg !== undefined && !Number.isSafeInteger(seedArg)) fail(`--seed wants an integer`);
  const inputs = positive(args.inputs, "--inputs");
  const time = positive(args.time, "--time") ?? (inputs === undefined ? 60 : undefined);
  const limitMs = positive(args["limit-ms"], "--limit-ms") ?? 5000;
  const corpus = args.corpus ?? ".vmesh/fuzz";
  Deno.mkdirSync(corpus, { recursive: true });
  const statePath = `${corpus}/state.json`;
  const state = loadState(statePath, seedArg);
  const saveState = () => {
    Deno.writeTextFileSync(`${statePath}.tmp`, JSON.stringify(state, null, 2) + "\n");
    Deno.renameSync(`${statePath}.tmp`, statePath);
  };
  console.log(
    `fuzz: seed ${state.seed}, corpus ${corpus}, ${targets.length} target(s)` +
      (time ? `, ${time} s` : "") + (inputs ? `, ${inputs} inputs each` : ""),
  );
  const t0 = Date.now();
  let total = 0, failures = 0;
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i];
    // The time left is shared by the targets still to run.
    const until = time === undefined
      ? Infinity
      : Date.now() + (t0 + time * 1000 - Date.now()) / (targets.length - i);
    const from = state.next[t.name] ?? 0;
    const tally = await fuzzTarget(t, state, inputs ?? Infinity, until, limitMs, saveState);
    total += tally.inputs;
    failures += tally.failures;
    console.log(
      `${t.name.padEnd(10)} ${String(tally.inputs).padStart(9)} inputs (from ${from}) in ${
        tally.seconds.toFixed(1)
      } s: ${
        (tally.inputs / tally.seconds).toFixed(0)
      }/s; accepted ${tally.accepted}, rejected ${tally.rejected}, failures ${tally.failures}; all-time ${
        state.tried[t.name]
      }`,
    );
  }
  const secs = (Date.now() - t0) / 1000;
  const allTime = Object.values(state.tried).reduce((a, b) => a + b, 0);
  console.log(
    `total      ${String(total).padStart(9)} inputs in ${secs.toFixed(1)} s: ${
      (total / secs).toFixed(0)
    }/s; failures ${failures}; all-time ${allTime} inputs in this corpus`,
  );
  if (failures) Deno.exit(1);
}

if (import.meta.main) await main();
