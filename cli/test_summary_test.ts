import assert from "node:assert/strict";
import {
  formatSummary,
  ignoredTests,
  parseDenoTestSummary,
  parseVmeshSummary,
  skippableName,
} from "./test_summary.ts";

// Real deno test 2.9.6 output (colours included) for one passed, one ignored, one failed test
// and a test with an ignored step.
const DENO_OUT = [
  "\x1b[0m\x1b[38;5;245mrunning 4 tests from ./a_test.ts\x1b[0m",
  "good ... \x1b[0m\x1b[32mok\x1b[0m \x1b[0m\x1b[38;5;245m(492µs)\x1b[0m",
  "skip me (skipped: no /dev/net/tun) ... \x1b[0m\x1b[33mignored\x1b[0m \x1b[0m\x1b[38;5;245m(0ms)\x1b[0m",
  "bad ... \x1b[0m\x1b[31mFAILED\x1b[0m \x1b[0m\x1b[38;5;245m(531µs)\x1b[0m",
  "steps ...",
  "  s2 ... \x1b[0m\x1b[33mignored\x1b[0m \x1b[0m\x1b[38;5;245m(0ms)\x1b[0m",
  "steps ... \x1b[0m\x1b[32mok\x1b[0m \x1b[0m\x1b[38;5;245m(446µs)\x1b[0m",
  "\x1b[0m\x1b[38;5;245mrunning 1 test from ./b_test.ts\x1b[0m",
  "plain ... \x1b[0m\x1b[33mignored\x1b[0m \x1b[0m\x1b[38;5;245m(0ms)\x1b[0m",
  "",
  "\x1b[0m\x1b[1m\x1b[37m\x1b[41m FAILURES \x1b[0m",
  "",
  "bad \x1b[0m\x1b[38;5;245m=> ./a_test.ts:3:6\x1b[0m",
  "",
  "\x1b[0m\x1b[31mFAILED\x1b[0m | 2 passed (1 step) | 1 failed | 2 ignored (1 step) \x1b[0m\x1b[38;5;245m(9ms)\x1b[0m",
].join("\n");

Deno.test("parseDenoTestSummary reads deno's closing line, colours and steps included", () => {
  assert.deepEqual(parseDenoTestSummary(DENO_OUT), { passed: 2, failed: 1, ignored: 2 });
  assert.deepEqual(parseDenoTestSummary("x\nok | 12 passed (3 steps) | 0 failed (4s)\n"), {
    passed: 12,
    failed: 0,
    ignored: 0,
  });
  assert.equal(parseDenoTestSummary("error: Module not found"), null);
});

Deno.test("ignoredTests lists ignored tests (not steps) with the reason their name gives", () => {
  assert.deepEqual(ignoredTests(DENO_OUT), [
    {
      file: "./a_test.ts",
      name: "skip me (skipped: no /dev/net/tun)",
      reason: "no /dev/net/tun",
    },
    { file: "./b_test.ts", name: "plain", reason: undefined },
  ]);
});

Deno.test("skippableName appends the reason only when the test is skipped", () => {
  assert.equal(skippableName("TAP ping", "needs root"), "TAP ping (skipped: needs root)");
  assert.equal(skippableName("TAP ping", undefined), "TAP ping");
  assert.equal(skippableName("TAP ping", ""), "TAP ping");
});

Deno.test("parseVmeshSummary reads ./vmesh test's closing line and the failed tests", () => {
  const out = `${DENO_OUT}\nskipped: ./b_test.ts plain\n${formatSummary(5, 1, 2)}\n`;
  assert.deepEqual(parseVmeshSummary(out), {
    line: "5 passed, 1 failed, 2 skipped",
    passed: 5,
    failed: 1,
    skipped: 2,
    failedTests: ["bad (./a_test.ts:3:6)"],
  });
  assert.equal(parseVmeshSummary("5 passed, 0 failed\n")?.skipped, 0);
  assert.equal(parseVmeshSummary("no summary here"), null);
});
