/**
 * Temp dirs that name their owner process, so that the dirs a process killed with SIGKILL
 * leaves behind (a nats-server store, a boot's overlays) are removed by the next one: each
 * dir holds `owner.pid`; making a new dir with a prefix first removes the dirs with that
 * prefix whose owner is gone.
 *
 * @module
 */

import { processGone } from "./process_gone.ts";

/** The file in each dir that names its owner's pid. */
export const OWNER_FILE = "owner.pid";

/**
 * Makes a temp dir `<tmp>/<prefix>XXXX` owned by this process, after removing the stale ones
 * (owner gone) with the same prefix. Dirs without an owner file are left alone.
 *
 * @example
 * ```ts
 * const dir = await makeOwnedTempDir("vmesh-nats-"); // and rm -r it when done, as before
 * ```
 */
export async function makeOwnedTempDir(prefix: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix });
  await Deno.writeTextFile(`${dir}/${OWNER_FILE}`, `${Deno.pid}\n`);
  await removeStaleDirs(dir.slice(0, dir.lastIndexOf("/")), prefix);
  return dir;
}

/** Removes the dirs `<parent>/<prefix>*` whose owner process is gone; returns their paths. */
export async function removeStaleDirs(parent: string, prefix: string): Promise<string[]> {
  const removed: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(parent)];
  } catch {
    return removed;
  }
  for (const e of entries) {
    if (!e.isDirectory || !e.name.startsWith(prefix)) continue;
    const dir = `${parent}/${e.name}`;
    let owner: number;
    try {
      owner = Number((await Deno.readTextFile(`${dir}/${OWNER_FILE}`)).trim());
    } catch {
      continue; // not ours, or its owner has not written the file yet
    }
    if (!Number.isSafeInteger(owner) || owner <= 0 || !processGone(owner)) continue;
    try {
      await Deno.remove(dir, { recursive: true });
      removed.push(dir);
    } catch { /* another sweeper got there first, or no permission: leave it */ }
  }
  return removed;
}
