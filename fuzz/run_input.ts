/** Generates and runs single inputs, classifying how each ended. */
import { hashName, mixSeed, Prng } from "./prng.ts";
import type { FuzzTarget, Outcome } from "./target.ts";

/**
 * Input number `index` of `target` under `seed`: the same bytes on every run and machine.
 *
 * @example
 * ```ts
 * import { elfTarget } from "./elf_target.ts";
 * const input = inputAt(elfTarget, 1, 217); // what `deno task fuzz --seed 1` tried 218th
 * ```
 */
export function inputAt(target: FuzzTarget, seed: number, index: number): Uint8Array {
  return target.generate(
    new Prng(mixSeed(seed, hashName(target.name), index, Math.floor(index / 2 ** 32))),
  );
}

/** How one input ended. */
export type Result =
  | { ok: true; outcome: Outcome }
  | { ok: false; kind: "exception" | "hang"; error: string };

/**
 * The error's name, message and stack, for a regression's `.txt`.
 *
 * @example
 * ```ts
 * describe(new RangeError("x")); // "RangeError: x\n    at ..."
 * ```
 */
export function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return `non-Error thrown: ${String(e)}`;
}

/**
 * Runs one input; an unexpected exception or an asynchronous wait past `limitMs` is a failure.
 * (A synchronous endless loop cannot be cut short here: the worker's watchdog catches those.)
 *
 * @example
 * ```ts
 * import { elfTarget } from "./elf_target.ts";
 * const r = await runInput(elfTarget, Uint8Array.of(1, 2, 3), 1000); // { ok: true, outcome: "rejected" }
 * ```
 */
export async function runInput(
  target: FuzzTarget,
  input: Uint8Array,
  limitMs: number,
): Promise<Result> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const running = target.run(input);
    // A synchronous target needs no timer (and is much faster without one).
    if (!(running instanceof Promise)) return { ok: true, outcome: running };
    const timeout = new Promise<"hang">((r) => timer = setTimeout(() => r("hang"), limitMs));
    const outcome = await Promise.race([running, timeout]);
    if (outcome === "hang") {
      return { ok: false, kind: "hang", error: `no result within ${limitMs} ms` };
    }
    return { ok: true, outcome };
  } catch (e) {
    return { ok: false, kind: "exception", error: describe(e) };
  } finally {
    clearTimeout(timer);
  }
}
