/**
 * Local directory page store: `<dir>/pages/<first 2 hex>/<hash>` and
 * `<dir>/manifests/<name>`. Files are written to a temporary name and renamed, so a
 * reader never sees a half-written page.
 * @module
 */

import type { PageStore } from "./page_store.ts";

/** A page store in a local directory. */
export class DirStore implements PageStore {
  readonly kind: string;

  private constructor(readonly dir: string) {
    this.kind = `dir:${dir}`;
  }

  /** Opens (creating it if needed) a store rooted at `dir`. */
  static async open(dir: string): Promise<DirStore> {
    await Deno.mkdir(`${dir}/pages`, { recursive: true });
    await Deno.mkdir(`${dir}/manifests`, { recursive: true });
    return new DirStore(dir);
  }

  #pagePath(hash: string): string {
    return `${this.dir}/pages/${hash.slice(0, 2)}/${hash}`;
  }

  /** Whether the page is held; a held page's time is set to now (the collector's grace). */
  async hasPage(hash: string): Promise<boolean> {
    try {
      const now = new Date();
      await Deno.utime(this.#pagePath(hash), now, now);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  async putPage(hash: string, data: Uint8Array): Promise<boolean> {
    if (await this.hasPage(hash)) return true;
    await Deno.mkdir(`${this.dir}/pages/${hash.slice(0, 2)}`, { recursive: true });
    await writeAtomically(this.#pagePath(hash), data);
    return false;
  }

  getPage(hash: string): Promise<Uint8Array | undefined> {
    return readIfExists(this.#pagePath(hash));
  }

  putManifest(name: string, encoded: Uint8Array): Promise<void> {
    return writeAtomically(`${this.dir}/manifests/${name}`, encoded);
  }

  getManifest(name: string): Promise<Uint8Array | undefined> {
    return readIfExists(`${this.dir}/manifests/${name}`);
  }

  async listManifests(): Promise<string[]> {
    const names: string[] = [];
    for await (const e of Deno.readDir(`${this.dir}/manifests`)) {
      // Temp files of a write in progress end in .tmp and hold a UUID: not manifests yet.
      if (e.isFile && !e.name.endsWith(".tmp")) names.push(e.name);
    }
    return names.sort();
  }

  async deleteManifest(name: string): Promise<boolean> {
    try {
      await Deno.remove(`${this.dir}/manifests/${name}`);
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  async listPages(): Promise<{ hash: string; mtimeMs: number; size: number }[]> {
    const out: { hash: string; mtimeMs: number; size: number }[] = [];
    for await (const d of Deno.readDir(`${this.dir}/pages`)) {
      if (!d.isDirectory) continue;
      for await (const e of Deno.readDir(`${this.dir}/pages/${d.name}`)) {
        // Temp files of a write in progress end in .tmp: not pages yet.
        if (!e.isFile || e.name.endsWith(".tmp")) continue;
        const st = await Deno.stat(`${this.dir}/pages/${d.name}/${e.name}`).catch(() => null);
        if (st) out.push({ hash: e.name, mtimeMs: st.mtime?.getTime() ?? 0, size: st.size });
      }
    }
    return out;
  }

  async deletePage(hash: string): Promise<boolean> {
    try {
      await Deno.remove(this.#pagePath(hash));
      return true;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return false;
      throw err;
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

async function writeAtomically(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeFile(tmp, data);
  await Deno.rename(tmp, path);
}

async function readIfExists(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}
