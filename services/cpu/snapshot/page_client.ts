/**
 * The CPU service's client of the memory service (`vmesh.memory.<op>`): stores pages the
 * store lacks (asked in batches with `has_pages`, sent in `put_pages` batches of up to 768 KiB,
 * a few in flight) and fetches pages, turning bus failures into one-line {@link SnapshotError}s.
 * @module
 */
import { type Bus, BusError, memory, MEMORY_PREFIX, type Op, Status } from "@vmesh/bus";
import { SnapshotError } from "./snapshot_error.ts";

const TARGET = { prefix: MEMORY_PREFIX };
/** Requests in flight at once. */
const WINDOW = 32;
/** Hashes per `has_pages` request (~260 KB, under NATS' 1 MiB payload). */
const HAS_BATCH = 4000;
/** Page bytes per `put_pages` request (under NATS' default 1 MiB payload, with room). */
const PUT_BATCH_BYTES = 768 * 1024;
/** `put_pages` requests in flight at once. */
const PUT_WINDOW = 4;
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

/** Runs `task(i)` for i in [0, n) with at most `window` at once. */
async function pool(
  n: number,
  task: (i: number) => Promise<void>,
  window = WINDOW,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker));
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
  const batches: memory.PutPage[][] = [];
  let batch: memory.PutPage[] = [];
  let batchBytes = 0;
  let bytes = 0;
  for (const hash of missing) {
    const data = pages.get(hash)!;
    if (batch.length && batchBytes + data.length > PUT_BATCH_BYTES) {
      batches.push(batch);
      batch = [];
      batchBytes = 0;
    }
    batch.push({ hash, data });
    batchBytes += data.length;
    bytes += data.length;
  }
  if (batch.length) batches.push(batch);
  await pool(batches.length, async (i) => {
    await memoryCall(
      bus,
      memory.ops.put_pages,
      { pages: batches[i] },
      `storing ${batches[i].length} pages`,
    );
  }, PUT_WINDOW);
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
