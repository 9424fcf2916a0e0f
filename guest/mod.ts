/**
 * Guest images built from Debian sources (kernel, busybox initramfs, ext4 data disk,
 * OpenSBI firmware), cached by recipe hash, and the QEMU oracle that boots them.
 */

export {
  type DataDiskEntry,
  defaultCacheDir,
  ensureDataDisk,
  ensureGuestImages,
  type EnsureGuestOptions,
  GUEST_CACHE_ENV,
  type GuestImages,
  type GuestManifest,
  OPENSBI_FW_JUMP,
} from "./build.ts";
export {
  type BuildFailure,
  currentTestRun,
  EarlierBuildFailure,
  TEST_RUN_ENV,
} from "./build_failure.ts";
export {
  BATCH_BEGIN_MARKER,
  BATCH_END_MARKER,
  batchCmdlineParam,
  type BatchOutput,
  GUEST_PROMPT,
  GUEST_READY_MARKER,
  GUEST_SHELL_MARKER,
  parseBatchOutput,
} from "./guest_protocol.ts";
export { PATTERN_BYTES, patternSectorHeader } from "./data_disk.ts";
export { qemuArgs, type QemuBatchResult, type QemuOptions, runQemuBatch } from "./qemu_oracle.ts";
export { StepError } from "./step_runner.ts";
export { imageArgs, vmeshRunArgs, type VmeshRunOptions } from "./vmesh_run_args.ts";
