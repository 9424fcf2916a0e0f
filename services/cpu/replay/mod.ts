/**
 * Deterministic record and replay of a run (`vmesh run --record/--replay`).
 *
 * @example
 * ```ts
 * import { RunReplayer } from "./mod.ts";
 * // const r = await RunReplayer.open("run.log", flags); new Machine({ ..., journal: r });
 * ```
 * @module
 */
export {
  imagesDigest,
  machineHash,
  ReplayError,
  type RunLogHeader,
  RunRecorder,
  RunReplayer,
} from "./run_log.ts";
export { TimeTravel, type TimeTravelOptions } from "./time_travel.ts";
