/**
 * The one error of taking or restoring a snapshot: a one-line message meant for the user.
 * @module
 */

/**
 * A snapshot that cannot be taken or restored (missing page, bad manifest, no memory service).
 *
 * @example
 * ```ts
 * throw new SnapshotError("no snapshot vm1-a on the memory service (./vmesh snapshots lists them)");
 * ```
 */
export class SnapshotError extends Error {
  override name = "SnapshotError";
}
