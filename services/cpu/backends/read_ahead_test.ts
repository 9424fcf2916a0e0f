import assert from "node:assert/strict";
import { ReadAhead } from "./read_ahead.ts";

const KiB = 1024;

/** A disk in memory whose fetches are recorded and can be held back. */
function fakeDisk(size: number) {
  const bytes = Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) & 0xff);
  const fetches: [number, number][] = [];
  const fetch = (offset: number, length: number) => {
    fetches.push([offset, length]);
    return Promise.resolve(bytes.slice(offset, offset + length));
  };
  return { bytes, fetches, fetch };
}

Deno.test("read-ahead: a sequential reader is served from chunks fetched ahead", async () => {
  const d = fakeDisk(1024 * KiB);
  const ra = new ReadAhead(d.fetch, {
    windowBytes: 256 * KiB,
    chunkBytes: 64 * KiB,
    sizeBytes: d.bytes.length,
  });
  for (let at = 0; at < 1024 * KiB; at += 32 * KiB) {
    assert.deepEqual(await ra.read(at, 32 * KiB), d.bytes.subarray(at, at + 32 * KiB));
  }
  // The first read and the second (which makes it a stream) miss; every later read is a hit.
  assert.equal(ra.stats.misses, 2);
  assert.equal(ra.stats.hits, 30);
  // Nothing is fetched past the end of the disk, and nothing twice.
  const starts = d.fetches.slice(1).map(([o]) => o);
  assert.equal(new Set(starts).size, starts.length);
  assert.ok(d.fetches.every(([o, n]) => o + n <= d.bytes.length));
  assert.ok(ra.cachedChunks <= 256 / 64 + 1, `${ra.cachedChunks} chunks held`);
});

Deno.test("read-ahead: a write drops what it overlaps, and nothing is fetched during it", async () => {
  const d = fakeDisk(512 * KiB);
  const ra = new ReadAhead(d.fetch, {
    windowBytes: 256 * KiB,
    chunkBytes: 64 * KiB,
    sizeBytes: d.bytes.length,
  });
  await ra.read(0, 4 * KiB); // starts the stream, chunks of 0..256 KiB in flight
  await ra.read(4 * KiB, 4 * KiB);
  const fetchedBefore = d.fetches.length;
  // The guest writes into a chunk already fetched; the disk changes under the cache.
  const data = new Uint8Array(4 * KiB).fill(0xee);
  let release!: () => void;
  const writing = ra.mutate(100 * KiB, data.length, async () => {
    await new Promise<void>((r) => release = r);
    d.bytes.set(data, 100 * KiB);
  });
  // A read meanwhile of a chunk the write does not touch is a hit, and fetches nothing ahead.
  const hits = ra.stats.hits;
  await ra.read(8 * KiB, 4 * KiB);
  assert.equal(ra.stats.hits, hits + 1);
  assert.equal(d.fetches.length, fetchedBefore);
  // The chunk the write overlaps is gone: a read of it goes to the disk (after the write).
  release();
  await writing;
  assert.deepEqual(await ra.read(96 * KiB, 8 * KiB), d.bytes.subarray(96 * KiB, 104 * KiB));
  assert.ok(ra.stats.dropped >= 1);
});

Deno.test("read-ahead: random reads are passed through; a failed chunk is read again", async () => {
  const d = fakeDisk(512 * KiB);
  let failNext = false;
  const fetch = (o: number, n: number) => {
    if (failNext) {
      failNext = false;
      return Promise.reject(new Error("deadline"));
    }
    return d.fetch(o, n);
  };
  const ra = new ReadAhead(fetch, {
    windowBytes: 128 * KiB,
    chunkBytes: 64 * KiB,
    sizeBytes: d.bytes.length,
  });
  for (const at of [300, 12, 200, 64, 480]) await ra.read(at * KiB, 4 * KiB);
  assert.equal(ra.stats.hits, 0);
  assert.equal(d.fetches.length, 5, "no read-ahead for a random reader");
  // A stream whose first chunk fetch fails: the read that needs it fetches again.
  await ra.read(0, 4 * KiB);
  failNext = true;
  await ra.read(4 * KiB, 4 * KiB); // starts chunks: the first one fails
  assert.deepEqual(await ra.read(64 * KiB, 4 * KiB), d.bytes.subarray(64 * KiB, 68 * KiB));
  assert.deepEqual(await ra.read(68 * KiB, 60 * KiB), d.bytes.subarray(68 * KiB, 128 * KiB));
});

Deno.test("read-ahead: window 0 turns it off", async () => {
  const d = fakeDisk(256 * KiB);
  const ra = new ReadAhead(d.fetch, {
    windowBytes: 0,
    chunkBytes: 64 * KiB,
    sizeBytes: d.bytes.length,
  });
  for (let at = 0; at < 256 * KiB; at += 16 * KiB) await ra.read(at, 16 * KiB);
  assert.equal(d.fetches.length, 16);
  assert.equal(ra.stats.hits, 0);
});
