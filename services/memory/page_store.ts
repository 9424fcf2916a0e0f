/**
 * The interface of a content-addressed page store (JetStream object store, or a local
 * directory). Pages are keyed by their SHA-256, so a page is stored once however many
 * snapshots, clones or VMs hold it. Manifests are stored by name as encoded protobuf.
 * @module
 */

/** Stores pages by hash and snapshot manifests by name. */
export interface PageStore {
  /** `objects:<bucket>` or `dir:<path>`, for logs and service info. */
  readonly kind: string;
  /** Whether the store holds the page. */
  hasPage(hash: string): Promise<boolean>;
  /** Stores a page unless it is already held; resolves to true when it was already held. */
  putPage(hash: string, data: Uint8Array): Promise<boolean>;
  /** The page bytes, or undefined when the store does not hold it. */
  getPage(hash: string): Promise<Uint8Array | undefined>;
  /** Stores (or replaces) an encoded manifest under `name`. */
  putManifest(name: string, encoded: Uint8Array): Promise<void>;
  /** The encoded manifest stored under `name`, or undefined. */
  getManifest(name: string): Promise<Uint8Array | undefined>;
  /** The names of the stored manifests, sorted. */
  listManifests(): Promise<string[]>;
  /** Removes the manifest `name`; resolves to false when there was none. Pages stay. */
  deleteManifest(name: string): Promise<boolean>;
  /** Every stored page with the time it was written (Unix ms). */
  listPages(): Promise<{ hash: string; mtimeMs: number; size: number }[]>;
  /** Removes page `hash`; resolves to false when there was none. */
  deletePage(hash: string): Promise<boolean>;
  /** Releases the store. */
  close(): Promise<void>;
}

/** Manifest names are single subject-like tokens, safe as file and object names. */
const NAME = /^[A-Za-z0-9_.-]{1,200}$/;

/** Whether `name` is a valid manifest name (no path separators, not `.` or `..`). */
export function isManifestName(name: string): boolean {
  return NAME.test(name) && name !== "." && name !== "..";
}
