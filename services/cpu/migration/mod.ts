/**
 * Live migration of a CPU service: dirty-page log, pages on the wire, the source's pre-copy
 * (`migrateOut`) and the incoming target (`serveIncoming`). See README.md.
 * @module
 */
export { DirtyLog, type TlbFlushable } from "./dirty_log.ts";
export { applyPages, encodePages, nonZeroPages, PAGE_SIZE } from "./page_batch.ts";
export { IncomingClock } from "./incoming_clock.ts";
export {
  type MigrateOptions,
  migrateOut,
  type MigrateResult,
  type MigrationSource,
} from "./migrate_source.ts";
export { type Incoming, type MigrationTarget, serveIncoming } from "./migrate_target.ts";
