/**
 * Disk layers on the agent's side: storing a snapshot's disk points (files on this host) as
 * layers of the memory service (the agent's `layers` op, asked by the control service's
 * `snapshot`), and rebuilding them when a restore lands on a host without those files.
 * @module
 */
import { type Bus, memory, MEMORY_PREFIX } from "@vmesh/bus";
import { fetchDiskLayer, storeDiskLayer } from "../../cli/disk_layers.ts";

/**
 * Stores each disk point of `m` (snapshot `snap`) and the base image under it as layers and
 * the manifest again with them; the disks stored and the page bytes sent.
 */
export async function storeSnapshotLayers(
  bus: Bus,
  snap: string,
  m: memory.SnapshotManifest,
): Promise<{ disks: string[]; sentBytes: number }> {
  let sentBytes = 0;
  const disks: string[] = [];
  for (const d of m.disks ?? []) {
    if (!d.frozen) throw new Error(`snapshot ${snap} holds no point of disk ${d.device}`);
    const layer = async (path: string, what: string) => {
      try {
        const r = await storeDiskLayer(bus, path);
        sentBytes += r.sentBytes;
        return r.layer;
      } catch (e) {
        throw new Error(`the ${what} of disk ${d.device} (${path}): ${(e as Error).message}`);
      }
    };
    d.baseLayer = await layer(d.image, "base");
    if (d.overlay !== d.image) d.pointLayer = await layer(d.overlay, "point");
    disks.push(d.device);
  }
  await bus.request({ prefix: MEMORY_PREFIX }, memory.ops.put_manifest, {
    name: snap,
    manifest: m,
  }, { timeoutMs: 60_000, retries: 1 });
  return { disks, sentBytes };
}

/** Rebuilds in progress or done, by output path: clones started at once fetch a base once. */
const rebuilds = new Map<string, Promise<void>>();

/**
 * File `out` rebuilt from `layer` (read-only, kept for the next restore of the same snapshot
 * on this host); when it exists already, nothing is fetched.
 */
export function rebuiltLayer(
  bus: Bus,
  layer: memory.DiskLayer,
  out: string,
  what: string,
): Promise<void> {
  let p = rebuilds.get(out);
  if (!p) {
    p = (async () => {
      if (await Deno.stat(out).then(() => true, () => false)) return;
      await fetchDiskLayer(bus, layer, out, what);
      await Deno.chmod(out, 0o444);
    })();
    rebuilds.set(out, p);
    // A failed rebuild is tried afresh by the next restore.
    p.catch(() => rebuilds.delete(out));
  }
  return p;
}
