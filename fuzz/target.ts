/** What a fuzz target is: a generator of inputs and a runner that feeds one to the real code. */
import type { Prng } from "./prng.ts";

/** How an input ended when nothing went wrong: accepted, or refused with the documented error. */
export type Outcome = "accepted" | "rejected";

/**
 * One fuzz target. `run` throws only when the code under test misbehaved (an exception that is
 * not the documented error, a broken invariant); documented refusals are returned as "rejected".
 */
export interface FuzzTarget {
  /** Short name used by `--target` and as the regressions folder. */
  readonly name: string;
  /** What is fuzzed and what counts as correct, one line. */
  readonly description: string;
  /** Prepares templates or fixtures once per process, before the first input. */
  init?(): Promise<void>;
  /** Builds one input from the generator. */
  generate(r: Prng): Uint8Array;
  /** Feeds one input to the real code. */
  run(input: Uint8Array): Outcome | Promise<Outcome>;
}

/** Raised by a target when an invariant of the code under test broke (not a thrown bug). */
export class InvariantError extends Error {
  override name = "InvariantError";
}

/** An error class (for {@link expecting}). */
// deno-lint-ignore no-explicit-any
export type ErrorClass = abstract new (...args: any[]) => Error;

/**
 * Runs `fn`; an error that `expected` accepts (a class list: instances of them; or a test)
 * becomes "rejected", anything else propagates as a finding. Synchronous when `fn` is.
 *
 * @example
 * ```ts
 * expecting([ElfError], () => parseElf(bytes)); // "accepted" or "rejected"
 * ```
 */
export function expecting(
  expected: readonly ErrorClass[] | ((e: unknown) => boolean),
  fn: () => unknown,
): Outcome | Promise<Outcome> {
  const refused = (e: unknown): Outcome => {
    const ok = typeof expected === "function"
      ? expected(e)
      : expected.some((cls) => e instanceof cls);
    if (ok) return "rejected";
    throw e;
  };
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    return refused(e);
  }
  if (result instanceof Promise) return result.then(() => "accepted" as const, refused);
  return "accepted";
}
