/**
 * A failed guest build, remembered in the cache as `<key>.failed.json` so that the other
 * tests of the same `./vmesh test` run (each its own process) fail at once with the first
 * failure's step and log instead of building again. A marker counts only within the run
 * that wrote it (`VMESH_TEST_RUN`, set by `./vmesh test`); outside a run it is ignored.
 */

import { StepError } from "./step_runner.ts";

/** The environment variable naming the current `./vmesh test` run. */
export const TEST_RUN_ENV = "VMESH_TEST_RUN";

/** What `<key>.failed.json` holds. */
export interface BuildFailure {
  key: string;
  /** The `./vmesh test` run it happened in (absent: outside a run). */
  run?: string;
  step: string;
  message: string;
  logPath?: string;
  at: string;
}

/** The current `./vmesh test` run id, if any. */
export function currentTestRun(): string | undefined {
  return Deno.env.get(TEST_RUN_ENV) || undefined;
}

function markerPath(cacheDir: string, key: string): string {
  return `${cacheDir}/${key}.failed.json`;
}

/** Raised instead of building again when the build already failed in this run. */
export class EarlierBuildFailure extends StepError {
  /** The failure recorded by the build that did run. */
  readonly failure: BuildFailure;
  constructor(f: BuildFailure) {
    super(f.step, "", f.logPath);
    this.name = "EarlierBuildFailure";
    this.failure = f;
    const what = /^[0-9a-f]+$/.test(f.key) ? `guest images ${f.key}` : `guest image ${f.key}`;
    this.message = `${what} not built: the build failed earlier in this ` +
      `./vmesh test run (${f.at}) and is not tried again until the next run: ${f.message}`;
  }
}

/** Records that building `key` failed with `err` in run `run` (nothing outside a run). */
export async function recordBuildFailure(
  cacheDir: string,
  key: string,
  err: unknown,
  run: string | undefined,
): Promise<void> {
  if (!run) return;
  const e = err as Partial<StepError>;
  const f: BuildFailure = {
    key,
    run,
    step: e.step ?? "guest build",
    message: e.message ?? String(err),
    logPath: e.logPath,
    at: new Date().toISOString(),
  };
  await Deno.writeTextFile(markerPath(cacheDir, key), JSON.stringify(f, null, 2) + "\n")
    .catch(() => {});
}

/** The failure of `key` recorded in run `run`, or null (none, another run, or no run). */
export async function failureInRun(
  cacheDir: string,
  key: string,
  run: string | undefined,
): Promise<BuildFailure | null> {
  if (!run) return null;
  try {
    const f = JSON.parse(await Deno.readTextFile(markerPath(cacheDir, key))) as BuildFailure;
    return f.run === run ? f : null;
  } catch {
    return null;
  }
}

/** Forgets a recorded failure of `key` (after a successful build). */
export async function clearBuildFailure(cacheDir: string, key: string): Promise<void> {
  await Deno.remove(markerPath(cacheDir, key)).catch(() => {});
}
