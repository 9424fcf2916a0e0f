/**
 * The fuzzing harness: targets over the real parsers and devices, a deterministic generator,
 * and the runner behind `deno task fuzz` (see README.md).
 *
 * @example
 * ```ts
 * import { TARGETS } from "./mod.ts";
 * for (const t of TARGETS) console.log(t.name, t.description);
 * ```
 *
 * @module
 */
import { bzImageTarget } from "./bzimage_target.ts";
import { elfTarget } from "./elf_target.ts";
import { gdbTarget } from "./gdb_target.ts";
import { mmioTarget } from "./mmio_target.ts";
import { protobufTarget } from "./protobuf_target.ts";
import { qcow2Target } from "./qcow2_target.ts";
import type { FuzzTarget } from "./target.ts";
import { virtqueueTarget } from "./virtqueue_target.ts";

export { Prng } from "./prng.ts";
export type { FuzzTarget, Outcome } from "./target.ts";
export { runInput } from "./run_input.ts";

/** Every target, in the order `deno task fuzz` runs them. */
export const TARGETS: readonly FuzzTarget[] = [
  elfTarget,
  bzImageTarget,
  qcow2Target,
  protobufTarget,
  gdbTarget,
  mmioTarget,
  virtqueueTarget,
];

/**
 * The target called `name`; throws listing the names when there is none.
 *
 * @example
 * ```ts
 * const t = targetNamed("mmio");
 * ```
 */
export function targetNamed(name: string): FuzzTarget {
  const t = TARGETS.find((t) => t.name === name);
  if (!t) {
    throw new Error(`no fuzz target ${name}: pick one of ${TARGETS.map((t) => t.name).join(", ")}`);
  }
  return t;
}
