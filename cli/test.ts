/**
 * `./vmesh test`: every check and test — `deno fmt --check`, `deno lint`, `deno check`,
 * `deno test` — ending with one summary line `N passed, N failed, N skipped` that CI reads,
 * after a line per skipped (ignored) test saying why it was skipped.
 */

import { formatSummary, ignoredTests, parseDenoTestSummary } from "./test_summary.ts";
import { TEST_RUN_ENV } from "../guest/build_failure.ts";

export { parseDenoTestSummary } from "./test_summary.ts";

const HELP = `Usage: ./vmesh test [--no-checks] [-- <deno test args>]

Runs deno fmt --check, deno lint, deno check, builds the guest images once (./vmesh
guest; cached, so this is quick after the first time) and runs deno test -A over the
repository. If the guest build fails, its log is shown once and the tests that boot a
guest fail at once in the same run instead of building again. Then it prints a
line per skipped (ignored) test with the reason its name gives, and last one line:
N passed, N failed, N skipped (each check counts as one, each test as one).

Options:
  --no-checks   skip fmt/lint/check, run only the tests
  -- ARGS       passed to deno test (e.g. -- --filter plic services/cpu); the images
                are then built by the first test that needs them, not up front`;

function deno(): string {
  return Deno.env.get("VMESH_DENO") ?? Deno.execPath();
}

function root(): string {
  return Deno.env.get("VMESH_ROOT") ?? new URL("..", import.meta.url).pathname;
}

async function step(name: string, args: string[]): Promise<{ ok: boolean; out: string }> {
  const t0 = performance.now();
  console.log(`== ${name}: deno ${args.join(" ")}`);
  const child = new Deno.Command(deno(), {
    args,
    cwd: root(),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Echo output live (progress) while keeping a copy for parsing.
  const chunks: string[] = [];
  const pump = async (
    s: ReadableStream<Uint8Array>,
    w: { write(b: Uint8Array): Promise<number> },
  ) => {
    const dec = new TextDecoder();
    for await (const b of s) {
      chunks.push(dec.decode(b, { stream: true }));
      await w.write(b);
    }
  };
  const [status] = await Promise.all([
    child.status,
    pump(child.stdout, Deno.stdout),
    pump(child.stderr, Deno.stderr),
  ]);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`== ${name}: ${status.success ? "ok" : "FAILED"} (${secs}s)`);
  return { ok: status.success, out: chunks.join("") };
}

/** Runs the suite; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(HELP);
    return 0;
  }
  const dd = args.indexOf("--");
  const testArgs = dd >= 0 ? args.slice(dd + 1) : [];
  const own = dd >= 0 ? args.slice(0, dd) : args;
  let passed = 0, failed = 0, skipped = 0;
  // Every process of this run shares the id: a guest build that failed is not tried again.
  Deno.env.set(TEST_RUN_ENV, `${Date.now()}-${Deno.pid}`);
  const install = await step("install npm packages", ["install", "--quiet"]);
  if (!install.ok) failed++;
  if (!own.includes("--no-checks")) {
    for (
      const [name, a] of [
        ["format", ["fmt", "--check"]],
        ["lint", ["lint"]],
        ["type check", ["check", "."]],
      ] as const
    ) {
      const r = await step(name, [...a]);
      r.ok ? passed++ : failed++;
    }
  }
  if (testArgs.length === 0) {
    const g = await step("guest images", ["run", "-A", "--quiet", "cli/main.ts", "guest"]);
    g.ok ? passed++ : failed++;
    if (!g.ok) {
      console.log("== guest images: the tests that boot a guest will fail at once (log above)");
    }
  }
  const t = await step("tests", ["test", "-A", "--no-prompt", ...testArgs]);
  const summary = parseDenoTestSummary(t.out);
  if (summary) {
    passed += summary.passed;
    failed += summary.failed;
    skipped += summary.ignored;
    if (!t.ok && summary.failed === 0) failed++; // e.g. a type error or an uncaught error
  } else {
    failed++;
  }
  for (const skip of ignoredTests(t.out)) {
    console.log(
      `skipped: ${skip.file} ${skip.name}${
        skip.reason ? "" : " — no reason given (name it '… (skipped: WHY)')"
      }`,
    );
  }
  console.log(formatSummary(passed, failed, skipped));
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
