/**
 * The source side of live migration (`vmesh.<vm>.ctl.migrate`): pre-copy while the guest
 * runs — every non-zero page first, then rounds of the pages written meanwhile (the dirty log)
 * — until what is left would go in `maxDowntimeMs` at the rate measured so far (or after
 * `maxRounds`); then the guest is paused, the source lets go of its control subject, switch
 * ports and console input, and in one synchronous step the last dirty pages and every hart and
 * device record are taken and sent. The target answers after its first batch of guest
 * instructions; the source then stops. If anything fails before that answer, the target is
 * told to abort and the source takes its devices back and runs on: nothing is lost.
 * @module
 */
import { createHash } from "node:crypto";
import { type Bus, BusError, migration, type Op, Status } from "@vmesh/bus";
import type { Machine } from "../machine/machine.ts";
import { saveMachine } from "../snapshot/machine_state.ts";
import { DirtyLog, type TlbFlushable } from "./dirty_log.ts";
import { encodePages, nonZeroPagesAsync, PAGE_SIZE } from "./page_batch.ts";

/** Pages per `pages` request (768 KiB: under NATS's default 1 MiB max_payload). */
const BATCH_PAGES = 192;
/** `pages` requests in flight. */
const WINDOW = 8;
/** VMESH_MIGRATE_DEBUG=1: each round's pages and time on stderr. */
const DEBUG = Deno.env.get("VMESH_MIGRATE_DEBUG") === "1";

/** What the source side needs of the VM service. */
export interface MigrationSource {
  bus: Bus;
  vm: string;
  machine: Machine;
  /** The harts (their TLBs are flushed at each round of the dirty log). */
  harts: readonly TlbFlushable[];
  /** The machine's flags as JSON (compared by the target). */
  machineFlags: string;
  /** SHA-256 (hex) of firmware, kernel and initrd (compared by the target). */
  imagesDigest: string;
  /** Pauses the harts (between batches); returns the wall time (Unix ms) of the pause. */
  pause(): number;
  /** Lets the harts run again. */
  resume(): void;
  /**
   * Stops serving the control subject, leaves the switch ports' rx without a `leave` (the
   * target takes the same ports), stops console input and publishes the console output so
   * far; returns the console output's next position and the input's position after the last
   * batch taken (-1: none).
   */
  detach(): Promise<{ outNext: number; inNext: number }>;
  /** Undoes `detach` (the migration failed). */
  reattach(): Promise<void>;
}

/** Options of one migration. */
export interface MigrateOptions {
  /** The target's host (its `--host`). */
  to: string;
  /** Downtime to aim at, ms. */
  maxDowntimeMs: number;
  /** Pre-copy rounds at most. */
  maxRounds: number;
  /** Send a SHA-256 of the whole RAM for the target to check. */
  verify: boolean;
}

/** What one migration did. */
export interface MigrateResult {
  host: string;
  rounds: number;
  sentPages: number;
  sentBytes: number;
  finalPages: number;
  /** Source paused (after its harts' last batch) -> the target's first batch began, ms. */
  downtimeMs: number;
  /** Source paused -> the target's run loop started with the loaded state, ms. */
  resumeMs: number;
  /** Of the downtime, the source's part: pause to the finish request sent, ms. */
  captureMs: number;
  /** Of the downtime, the target's writing the last pages and loading the records, ms. */
  targetLoadMs: number;
  totalMs: number;
  /** Pages sent by round (round 0: every non-zero page). */
  roundPages: number[];
}

/** Migrates `src`'s machine to the incoming CPU service on host `opts.to`. */
export async function migrateOut(
  src: MigrationSource,
  opts: MigrateOptions,
): Promise<MigrateResult> {
  const t0 = performance.now();
  const target = { vm: src.vm, device: migration.INCOMING_DEVICE };
  const call = <Q, R>(op: Op<Q, R>, req: Q, ms: number): Promise<R> =>
    src.bus.request(target, op, req, { timeoutMs: ms, retries: 0 });
  const m = src.machine;
  // The pages go out only while the run loop yields (socket writes, replies): after every
  // batch, or a busy guest dirties pages as fast as they are sent (measured in migrate_bench).
  const yieldMs = m.yieldMs;
  m.yieldMs = 0;
  let hello: migration.HelloReply;
  try {
    hello = await call(migration.ops.hello, {
      machine: src.machineFlags,
      imagesDigest: src.imagesDigest,
      host: opts.to,
    }, 10_000);
  } catch (e) {
    m.yieldMs = yieldMs;
    if (e instanceof BusError && /no service|no responders|timeout/i.test(e.message)) {
      throw new BusError(
        Status.FAILED_PRECONDITION,
        `no incoming CPU service for VM ${src.vm} answers on vmesh.${src.vm}.incoming: start ` +
          `one on host ${opts.to} with the VM's flags and --incoming --host ${opts.to}`,
      );
    }
    throw e;
  }

  const ram = m.mem.ram();
  const log = new DirtyLog(m.mem, src.harts);
  let sentPages = 0, sentBytes = 0;
  const roundPages: number[] = [];
  /**
   * Sends `pages` (each batch's content as it is when the batch is made, or `made` batches
   * copied before), WINDOW in flight.
   */
  const sendRound = async (pages: number[], round: number, made?: migration.PageBatch[]) => {
    const inflight = new Set<Promise<unknown>>();
    let failed: unknown;
    for (let i = 0; i < pages.length && failed === undefined; i += BATCH_PAGES) {
      const { batch, bytes } = made
        ? { batch: made[i / BATCH_PAGES], bytes: 0 }
        : encodePages(ram, pages.slice(i, i + BATCH_PAGES), round);
      sentBytes += bytes;
      const p = call(migration.ops.pages, batch, 30_000).catch((e) => failed ??= e)
        .finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= WINDOW) await Promise.race(inflight);
    }
    await Promise.all(inflight);
    if (failed !== undefined) throw failed;
    sentPages += pages.length;
    roundPages.push(pages.length);
  };

  let pausedAt = 0, detached = false, finishSentAt = 0;
  let finalPages = 0;
  try {
    // Log first, then read: a page written after it is read is sent again next round.
    log.start();
    const s0 = performance.now();
    // Pages written after their slice was read are in the log: sent next round.
    let pages = await nonZeroPagesAsync(ram);
    if (DEBUG) {
      console.error(
        `migrate: hello ${(s0 - t0).toFixed(1)} ms, scan ${(performance.now() - s0).toFixed(1)} ms`,
      );
    }
    let bytesPerMs = 0;
    for (let round = 0;; round++) {
      const r0 = performance.now();
      await sendRound(pages, round);
      const took = performance.now() - r0;
      if (DEBUG) {
        console.error(`migrate: round ${round}: ${pages.length} pages in ${took.toFixed(1)} ms`);
      }
      if (pages.length > 0) bytesPerMs = pages.length * PAGE_SIZE / Math.max(took, 0.1);
      const left = log.count();
      const fits = left * PAGE_SIZE <= bytesPerMs * opts.maxDowntimeMs / 2;
      if (fits || round + 1 >= opts.maxRounds) break;
      pages = log.take();
    }

    pausedAt = src.pause();
    const consoleAt = await src.detach();
    detached = true;
    const detachedAt = performance.timeOrigin + performance.now();
    // One synchronous step: no instruction retires and no DMA lands meanwhile. Every page is
    // copied in it; the batches that do not fit the finish message go first.
    const last = log.take();
    log.stop();
    finalPages = last.length;
    const made: migration.PageBatch[] = [];
    for (let i = 0; i < last.length || i === 0; i += BATCH_PAGES) {
      const { batch, bytes } = encodePages(ram, last.slice(i, i + BATCH_PAGES), roundPages.length);
      made.push(batch);
      sentBytes += bytes;
    }
    const state = saveMachine(m);
    const mtime = m.clock.now();
    const ramSha256 = opts.verify ? sha256Of(ram) : new Uint8Array();
    const batch = made.pop()!;
    if (made.length) {
      const before = sentPages;
      await sendRound(last.slice(0, made.length * BATCH_PAGES), roundPages.length, made);
      roundPages.pop(); // counted with the final pages
      sentPages = before;
    }
    sentPages += last.length;
    finishSentAt = performance.timeOrigin + performance.now();
    if (DEBUG) {
      console.error(
        `migrate: paused: hand-over ${(detachedAt - pausedAt).toFixed(1)} ms, capture and ` +
          `${made.length} extra batches ${(finishSentAt - detachedAt).toFixed(1)} ms`,
      );
    }
    const done = await call(migration.ops.finish, {
      pages: batch,
      harts: state.harts,
      devices: state.devices,
      mtime,
      pausedAtUnixMs: pausedAt,
      ramSha256,
      consoleSeq: consoleAt.outNext,
      consoleInNext: consoleAt.inNext,
      consolePending: m.pendingInput(),
    }, 30_000);
    m.yieldMs = yieldMs;
    return {
      host: hello.host,
      rounds: roundPages.length,
      sentPages,
      sentBytes,
      finalPages,
      downtimeMs: done.firstInstructionUnixMs - pausedAt,
      resumeMs: done.resumedUnixMs - pausedAt,
      captureMs: finishSentAt - pausedAt,
      targetLoadMs: done.loadMs,
      totalMs: performance.now() - t0,
      roundPages,
    };
  } catch (e) {
    m.yieldMs = yieldMs;
    log.stop();
    await call(migration.ops.abort, { reason: String((e as Error).message ?? e) }, 2000)
      .catch(() => {});
    if (detached) await src.reattach();
    if (pausedAt) src.resume();
    // Not a retryable status: a second try must be asked for (and needs a new --incoming).
    throw new BusError(
      Status.FAILED_PRECONDITION,
      `migration of ${src.vm} to ${opts.to} failed, the VM runs on here: ${
        (e as Error).message
      } (start a new --incoming target to try again)`,
    );
  }
}

/** SHA-256 of RAM (copied in slices: node's hash takes no shared memory). */
function sha256Of(ram: Uint8Array): Uint8Array {
  const h = createHash("sha256");
  for (let o = 0; o < ram.length; o += 1 << 24) h.update(ram.slice(o, o + (1 << 24)));
  return new Uint8Array(h.digest());
}
