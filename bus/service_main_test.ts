import assert from "node:assert/strict";
import { parsePositiveInt, ServiceCli } from "./service_main.ts";

Deno.test("parsePositiveInt: absent, valid, and each kind of bad value", () => {
  assert.equal(parsePositiveInt("max-page", undefined), undefined);
  assert.equal(parsePositiveInt("max-page", "4096"), 4096);
  for (const bad of ["0", "-1", "1.5", "x", "", "1e300"]) {
    assert.throws(
      () => parsePositiveInt("max-page", bad),
      new RangeError(`--max-page must be a positive integer: ${bad}`),
    );
  }
});

Deno.test("ServiceCli.parse: typed values with defaults; --help prints usage and gives undefined", () => {
  const cli = new ServiceCli("vmesh-test", "usage: test");
  const options = {
    vm: { type: "string", default: "vm1" },
    backend: { type: "string", multiple: true },
    help: { type: "boolean", default: false },
  } as const;
  const flags = cli.parse(options, ["--backend", "a", "--backend=b"]);
  assert.deepEqual({ ...flags }, { vm: "vm1", backend: ["a", "b"], help: false });
  const printed: unknown[] = [];
  const log = console.log;
  console.log = (...args: unknown[]) => printed.push(...args);
  try {
    assert.equal(cli.parse(options, ["--help"]), undefined);
  } finally {
    console.log = log;
  }
  assert.deepEqual(printed, ["usage: test"]);
});

/** Runs `code` (with `cli` a ServiceCli) in a child Deno; returns its exit code and stderr. */
async function runCli(code: string): Promise<{ code: number; stderr: string }> {
  const mod = new URL("./service_main.ts", import.meta.url).href;
  const script = `import { ServiceCli } from ${JSON.stringify(mod)};\n` +
    `const cli = new ServiceCli("vmesh-test", "usage: test");\n${code}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    cwd: new URL("../", import.meta.url),
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("ServiceCli failures: one prefixed line (plus usage for flag errors) and the exit code", async () => {
  assert.deepEqual(
    await runCli(`cli.parse({ vm: { type: "string" } }, ["--nope"]);`),
    {
      code: 2,
      stderr: "vmesh-test: Unknown option '--nope'\nusage: test\n",
    },
  );
  assert.deepEqual(await runCli(`cli.positiveInt("max-page", "0");`), {
    code: 2,
    stderr: "vmesh-test: --max-page must be a positive integer: 0\n",
  });
  assert.deepEqual(await runCli(`cli.checkHttp("nope");`), {
    code: 2,
    stderr: "vmesh-test: --http must be [HOST:]PORT with PORT 0..65535 (0 = any free): nope\n",
  });
  assert.deepEqual(await runCli(`cli.fail("cannot serve: x", 1);`), {
    code: 1,
    stderr: "vmesh-test: cannot serve: x\n",
  });
});

Deno.test("ServiceCli.startHttp: undefined when off; a port in use fails with exit 1", async () => {
  const cli = new ServiceCli("vmesh-test", "usage: test");
  assert.equal(cli.startHttp(undefined, {}), undefined);
  assert.equal(cli.startHttp("off", {}), undefined);
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { port } = taken.addr as Deno.NetAddr;
    const out = await runCli(`cli.startHttp("127.0.0.1:${port}", {});`);
    assert.equal(out.code, 1);
    assert.match(
      out.stderr,
      new RegExp(`^vmesh-test: --http: cannot listen on 127\\.0\\.0\\.1:${port}: .+\\n$`),
    );
  } finally {
    taken.close();
  }
});
