/**
 * The CPU service's client of the memory service (`vmesh.memory.<op>`): stores pages the
 * store lacks (asked in batches with `has_pages`, sent with bounded concurrency) and fetches
 * pages, turning bus failures into one-line {@link SnapshotError}s.
 * @module
 */
import { type Bus, BusError, memory, MEMORY_PREFIX, type Op, Status } from "@vmesh/bus";
import { SnapshotError } from "./snapshot_error.ts";

const TARGET = { prefix: MEMORY_PREFIX };
/** Requests in flight at once. */
const WINDOW = 32;
/** Hashes per `has_pages` request (~260 KB, under NATS' 1 MiB payload). */
const HAS_BATCH = 4000;
const TIMEOUT_MS = 30_000;

/** Runs a memory request; a missing service or a refusal becomes a SnapshotError. */
export async function memoryCall<Req, Res>(
  bus: Bus,
  op: Op<Req, Res>,
  req: Req,
  what: string,
): Promise<Res> {
  try {
    return await bus.request(TARGET, op, req, { timeoutMs: TIMEOUT_MS });
  } catch (e) {
    if (e instanceof BusError && e.code === Status.UNAVAILABLE) {
      throw new SnapshotError(
        `no memory service answers on ${MEMORY_PREFIX}.${op.name} (${what}): start one ` +
          `(deno run -A services/memory/main.ts --store dir:PATH), or use ./vmesh snapshot, ` +
          `which starts one; on a bus with a login per service, the CPU service's login must ` +
          `be allowed to publish to ${MEMORY_PREFIX}.* (bus/credentials.ts)`,
      );
    }
    if (e instanceof BusError) throw new SnapshotError(`${what}: ${e.message}`);
    throw e;
  }
}

/** Runs `task(i)` for i in [0, n) with at most {@link WINDOW} at once. */
async function pool(n: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(WINDOW, n) }, worker));
}

/** What {@link storePages} sent. */
export interface StoreResult {
  /** Pages the store lacked, now sent. */
  sent: number;
  /** Their bytes. */
  bytes: number;
}

/** Stores every page of `pages` (hex hash → bytes) that the memory service lacks. */
export async function storePages(bus: Bus, pages: Map<string, Uint8Array>): Promise<StoreResult> {
  const hashes = [...pages.keys()];
  const missing: string[] = [];
  for (let o = 0; o < hashes.length; o += HAS_BATCH) {
    const batch = hashes.slice(o, o + HAS_BATCH);
    const r = await memoryCall(
      bus,
      memory.ops.has_pages,
      { hashes: batch },
      "asking which pages are stored",
    );
    for (const i of r.missing) missing.push(batch[i]);
  }
  let bytes = 0;
  await pool(missing.length, async (i) => {
    const hash = missing[i];
    const data = pages.get(hash)!;
    await memoryCall(
      bus,
      memory.ops.put_page,
      { hash, data },
      `storing page ${hash}`,
    );
    bytes += data.length;
  });
  return { sent: missing.length, bytes };
}

/**
 * Fetches every page of `hashes`; a page the store does not hold is a SnapshotError naming
 * it and what it belongs to (`whose(hash)`).
 */
export async function fetchPages(
  bus: Bus,
  hashes: string[],
  whose: (hash: string) => string,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  const unique = [...new Set(hashes)];
  await pool(unique.length, async (i) => {
    const hash = unique[i];
    try {
      const r = await bus.request(TARGET, memory.ops.get_page, { hash }, {
        timeoutMs: TIMEOUT_MS,
      });
      out.set(hash, r.data);
    } catch (e) {
      if (e instanceof BusError && e.code === Status.NOT_FOUND) {
        throw new SnapshotError(`page ${hash} (${whose(hash)}) is missing from the memory service`);
      }
      if (e instanceof BusError && e.code === Status.UNAVAILABLE) {
        throw new SnapshotError(`no memory service answers on ${MEMORY_PREFIX}.get_page`);
      }
      throw e instanceof BusError ? new SnapshotError(`fetching page ${hash}: ${e.message}`) : e;
    }
  });
  return out;
}
