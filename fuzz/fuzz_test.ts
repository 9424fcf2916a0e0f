import assert from "node:assert/strict";
import { TARGETS } from "./mod.ts";
import { listRegressions } from "./regressions.ts";
import { inputAt, runInput } from "./run_input.ts";

/** Inputs per target in the slice `./vmesh test` runs (a few seconds in all). */
const SLICE: Record<string, number> = {
  elf: 2000,
  bzimage: 2000,
  qcow2: 150,
  protobuf: 1000,
  gdb: 120,
  mmio: 200,
  virtqueue: 300,
};
const SEED = 20261203;

for (const target of TARGETS) {
  Deno.test(`fuzz slice: ${target.name} (seed ${SEED}, ${SLICE[target.name]} inputs)`, async () => {
    await target.init?.();
    const seen = { accepted: 0, rejected: 0 };
    const failures: string[] = [];
    for (let i = 0; i < SLICE[target.name]; i++) {
      const r = await runInput(target, inputAt(target, SEED, i), 5000);
      if (r.ok) seen[r.outcome]++;
      else failures.push(`input ${i}: ${r.kind}: ${r.error.split("\n").slice(0, 3).join(" | ")}`);
    }
    assert.deepEqual(failures, [], `run: deno task fuzz --target ${target.name} --seed ${SEED}`);
    // The generator reaches past the first check: some inputs are accepted whole.
    assert.ok(seen.accepted > 0, `${target.name}: no input was accepted (${JSON.stringify(seen)})`);
  });

  // Registered only where cases exist: a replay of nothing would assert nothing.
  const cases = listRegressions(target.name);
  if (cases.length === 0) continue;
  Deno.test(`fuzz regressions: the ${cases.length} kept ${target.name} input(s) pass`, async () => {
    await target.init?.();
    for (const { path, input } of cases) {
      const r = await runInput(target, input, 5000);
      assert.ok(r.ok, `${path}: ${r.ok ? "" : `${r.kind}: ${r.error}`}`);
    }
  });
}

Deno.test("fuzz inputs are a function of (seed, target, index)", async () => {
  for (const target of TARGETS) {
    await target.init?.();
    assert.deepEqual(inputAt(target, 7, 42), inputAt(target, 7, 42), target.name);
    assert.notDeepEqual(inputAt(target, 7, 42), inputAt(target, 8, 42), target.name);
  }
});
