/**
 * Snapshots of a CPU service's machine in the memory service (`vmesh.memory.*`):
 * {@link takeSnapshot} stores one, {@link fetchSnapshot} + {@link applySnapshot} restore one
 * into a new machine, whose clock is a {@link ResumedClock}. See README.md.
 * @module
 */
export {
  defaultSnapshotName,
  type SnapshotResult,
  type SnapshotSource,
  takeSnapshot,
} from "./take_snapshot.ts";
export { applySnapshot, type FetchedSnapshot, fetchSnapshot } from "./fetch_snapshot.ts";
export { parseMachineFlags, type SnapshotMachineFlags } from "./machine_flags.ts";
export { ResumedClock } from "./resumed_clock.ts";
export { SnapshotError } from "./snapshot_error.ts";
export { checkMachineRecords, loadMachine, saveMachine } from "./machine_state.ts";
export { conflictingRestoreFlag, RESTORE_FIXED_FLAGS, restoreOptions } from "./restore_options.ts";
