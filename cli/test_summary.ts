/**
 * Reading test output: deno test's closing line and its `ignored` tests, and the closing line
 * `N passed, N failed, N skipped` that `./vmesh test` prints (and CI reads).
 */

// deno colours its output; ANSI escapes are stripped before matching.
// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

/** The counts in deno test's closing line. */
export interface DenoTestCounts {
  passed: number;
  failed: number;
  ignored: number;
}

/**
 * Parses deno test's closing line.
 *
 * @example
 * ```ts
 * parseDenoTestSummary("ok | 12 passed (3 steps) | 0 failed | 2 ignored (4s)");
 * // { passed: 12, failed: 0, ignored: 2 }
 * ```
 */
export function parseDenoTestSummary(out: string): DenoTestCounts | null {
  const plain = out.replace(ANSI, "");
  const last = plain.split("\n").filter((l) => /\|\s*\d+ passed/.test(l)).at(-1);
  if (!last) return null;
  const count = (word: string) => Number(new RegExp(`(\\d+) ${word}`).exec(last)?.[1] ?? 0);
  return { passed: count("passed"), failed: count("failed"), ignored: count("ignored") };
}

/** One test deno reported as `ignored`. */
export interface IgnoredTest {
  /** The module it is in, as deno printed it (`./tests/x_test.ts`). */
  file: string;
  name: string;
  /** Why it was skipped: the `(skipped: WHY)` part of its name, if it has one. */
  reason?: string;
}

/** Marks the reason in a test's name; see {@link skippableName}. */
const REASON = /\(skipped: ([^)]*)\)/;

/**
 * The tests (not steps) deno test reported as ignored, with the reason their name gives.
 *
 * @example
 * ```ts
 * ignoredTests("running 1 test from ./a_test.ts\nt (skipped: no tun) ... ignored (0ms)\n");
 * // [{ file: "./a_test.ts", name: "t (skipped: no tun)", reason: "no tun" }]
 * ```
 */
export function ignoredTests(out: string): IgnoredTest[] {
  const found: IgnoredTest[] = [];
  let file = "";
  for (const line of out.replace(ANSI, "").split("\n")) {
    const mod = /^running \d+ tests? from (\S+)/.exec(line);
    if (mod) file = mod[1];
    // Indented lines are steps; deno counts tests and steps apart, so only tests are listed.
    const m = /^(\S.*?) \.\.\. ignored \(/.exec(line);
    if (!m) continue;
    found.push({ file, name: m[1], reason: REASON.exec(m[1])?.[1] });
  }
  return found;
}

/**
 * A test's name with why it is skipped here appended, `NAME (skipped: WHY)`, so that
 * `./vmesh test` can say why; `why` empty or undefined means the test runs.
 *
 * @example
 * ```ts
 * Deno.test({ name: skippableName("TAP ping", why), ignore: !!why, fn() {} });
 * ```
 */
export function skippableName(name: string, why: string | undefined): string {
  return why ? `${name} (skipped: ${why})` : name;
}

/** The closing line `./vmesh test` prints. */
export function formatSummary(passed: number, failed: number, skipped: number): string {
  return `${passed} passed, ${failed} failed, ${skipped} skipped`;
}

/** What `./vmesh test`'s output says at its end. */
export interface VmeshSummary {
  /** The closing line, e.g. `510 passed, 2 failed, 5 skipped`. */
  line: string;
  passed: number;
  failed: number;
  skipped: number;
  /** Names of the failed tests (deno's `name => file:line` lines under FAILURES). */
  failedTests: string[];
}

/**
 * Reads the closing line of `./vmesh test` and deno's list of failed tests.
 *
 * @example
 * ```ts
 * parseVmeshSummary("…\n3 passed, 0 failed, 1 skipped\n")?.skipped; // 1
 * ```
 */
export function parseVmeshSummary(out: string): VmeshSummary | null {
  const lines = out.replace(ANSI, "").split("\n");
  const closing = lines.map((l) =>
    /^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?$/.exec(l.trim())
  )
    .filter((m) => m !== null).at(-1);
  if (!closing) return null;
  const failedTests: string[] = [];
  const start = lines.lastIndexOf(" FAILURES ") >= 0
    ? lines.lastIndexOf(" FAILURES ")
    : lines.findLastIndex((l) => l.trim() === "FAILURES");
  if (start >= 0) {
    for (const l of lines.slice(start + 1)) {
      const m = /^(.+) => (\S+:\d+:\d+)$/.exec(l.trim());
      if (m) failedTests.push(`${m[1]} (${m[2]})`);
      else if (/^(ok|FAILED) \|/.test(l.trim())) break;
    }
  }
  return {
    line: closing[0].trim(),
    passed: Number(closing[1]),
    failed: Number(closing[2]),
    skipped: Number(closing[3] ?? 0),
    failedTests,
  };
}
