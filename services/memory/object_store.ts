/**
 * JetStream object store page store: pages in bucket `<bucket>` named by hash,
 * manifests in bucket `<bucket>-manifests` named by manifest name.
 * @module
 */

import type { NatsConnection } from "@nats-io/transport-node";
import { type ObjectStore, Objm } from "@nats-io/obj";
import type { PageStore } from "./page_store.ts";

/** Default bucket of pages. */
export const DEFAULT_BUCKET = "vmesh-pages";

/** A page store on a NATS JetStream object store (the server must run with `-js`). */
export class JetStreamStore implements PageStore {
  readonly kind: string;

  private constructor(
    readonly bucket: string,
    readonly pages: ObjectStore,
    readonly manifests: ObjectStore,
  ) {
    this.kind = `objects:${bucket}`;
  }

  /** Opens (creating them if needed) the page and manifest buckets. */
  static async open(nc: NatsConnection, bucket = DEFAULT_BUCKET): Promise<JetStreamStore> {
    const objm = new Objm(nc);
    const pages = await objm.create(bucket);
    const manifests = await objm.create(`${bucket}-manifests`);
    return new JetStreamStore(bucket, pages, manifests);
  }

  async hasPage(hash: string): Promise<boolean> {
    const info = await this.pages.info(hash);
    return info !== null && !info.deleted;
  }

  async putPage(hash: string, data: Uint8Array): Promise<boolean> {
    if (await this.hasPage(hash)) return true;
    await this.pages.putBlob({ name: hash }, data);
    return false;
  }

  async getPage(hash: string): Promise<Uint8Array | undefined> {
    return (await this.pages.getBlob(hash)) ?? undefined;
  }

  async putManifest(name: string, encoded: Uint8Array): Promise<void> {
    await this.manifests.putBlob({ name }, encoded);
  }

  async getManifest(name: string): Promise<Uint8Array | undefined> {
    return (await this.manifests.getBlob(name)) ?? undefined;
  }

  async listManifests(): Promise<string[]> {
    const list = await this.manifests.list();
    return list.filter((i) => !i.deleted).map((i) => i.name).sort();
  }

  async deleteManifest(name: string): Promise<boolean> {
    const info = await this.manifests.info(name);
    if (info === null || info.deleted) return false;
    await this.manifests.delete(name);
    return true;
  }

  async listPages(): Promise<{ hash: string; mtimeMs: number; size: number }[]> {
    const list = await this.pages.list();
    return list.filter((i) => !i.deleted).map((i) => ({
      hash: i.name,
      mtimeMs: Date.parse(i.mtime),
      size: i.size,
    }));
  }

  async deletePage(hash: string): Promise<boolean> {
    const info = await this.pages.info(hash);
    if (info === null || info.deleted) return false;
    await this.pages.delete(hash);
    return true;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
