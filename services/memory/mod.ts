/**
 * @vmesh/memory — the content-addressed page store service (snapshots, clones, migration).
 *
 * - {@link PageStore}: the store interface; {@link JetStreamStore} (NATS JetStream object
 *   store) and {@link DirStore} (a local directory).
 * - {@link pageHash}: the SHA-256 hex a page is keyed by.
 * - {@link servePages}: serves a store as `vmesh.memory.<op>` (proto/memory.proto).
 * @module
 */

export { isPageHash, pageHash } from "./page_hash.ts";
export { isManifestName, type PageStore } from "./page_store.ts";
export { DirStore } from "./dir_store.ts";
export { DEFAULT_BUCKET, JetStreamStore } from "./object_store.ts";
export {
  DEFAULT_MAX_PAGE,
  pageHandlers,
  type PageServiceOptions,
  servePages,
  SERVICE_NAME,
} from "./page_service.ts";
