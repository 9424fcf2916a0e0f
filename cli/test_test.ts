// `./vmesh test` end to end on a small test module: the skipped tests are listed with their
// reason and the closing line counts passed, failed and skipped tests.
import assert from "node:assert/strict";

const MAIN = new URL("./main.ts", import.meta.url).pathname;
const SUMMARY = new URL("./test_summary.ts", import.meta.url).href;

/** Runs `./vmesh test --no-checks -- MODULE`; `out` is stdout, where the summary goes. */
async function vmeshTest(module: string): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, "test", "--no-checks", "--", module],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) };
}

Deno.test("vmesh test: skipped tests are named with their reason; N passed, N failed, N skipped", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vmesh-test-cli-" });
  try {
    const module = `${dir}/sample_test.ts`;
    await Deno.writeTextFile(
      module,
      `import { skippableName } from "${SUMMARY}";
Deno.test("adds", () => { if (1 + 1 !== 2) throw new Error("math"); });
Deno.test({ name: skippableName("needs a widget", "no widget here"), ignore: true, fn() {} });
Deno.test({ name: "ignored without a reason", ignore: true, fn() {} });
`,
    );
    const ok = await vmeshTest(module);
    assert.equal(ok.code, 0, ok.out);
    const lines = ok.out.trimEnd().split("\n");
    assert.equal(lines.at(-1), "1 passed, 0 failed, 2 skipped");
    assert.ok(
      lines.some((l) =>
        /^skipped: \S*sample_test\.ts needs a widget \(skipped: no widget here\)$/.test(l)
      ),
      ok.out,
    );
    assert.ok(lines.some((l) => /ignored without a reason — no reason given/.test(l)), ok.out);

    await Deno.writeTextFile(module, `Deno.test("fails", () => { throw new Error("no"); });\n`, {
      append: true,
    });
    const bad = await vmeshTest(module);
    assert.equal(bad.code, 1);
    assert.equal(bad.out.trimEnd().split("\n").at(-1), "1 passed, 1 failed, 2 skipped");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
