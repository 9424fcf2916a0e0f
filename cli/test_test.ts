import assert from "node:assert/strict";
import { parseDenoTestSummary } from "./test.ts";

Deno.test("parseDenoTestSummary reads deno's closing line, colours and steps included", () => {
  assert.deepEqual(parseDenoTestSummary("x\nok | 12 passed (3 steps) | 0 failed (4s)\n"), {
    passed: 12,
    failed: 0,
  });
  assert.deepEqual(
    parseDenoTestSummary("\x1b[0m\x1b[31mFAILED\x1b[0m | 7 passed | 2 failed (1s)"),
    { passed: 7, failed: 2 },
  );
  assert.equal(parseDenoTestSummary("error: Module not found"), null);
});
