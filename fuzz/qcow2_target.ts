/**
 * The qcow2 parsers (services/disk/qcow2_header.ts, qcow2_image.ts): a corrupted image file in
 * a temp dir opens and serves reads and a write, or is refused with Qcow2FormatError (at open)
 * or BlockError (corrupt data a read finds, e.g. a compressed cluster that does not inflate).
 */
import { createQcow2 } from "../services/disk/qcow2_create.ts";
import { BlockError } from "../services/disk/block_backend.ts";
import { decodeQcow2Header, Qcow2FormatError } from "../services/disk/qcow2_header.ts";
import { Qcow2Image } from "../services/disk/qcow2_image.ts";
import { mutate } from "./bytes.ts";
import type { Prng } from "./prng.ts";
import { expecting, type FuzzTarget, type Outcome } from "./target.ts";

const CLUSTER = 512;
/** Header fields (big-endian u32/u64) and the first L1, refcount table and L2 entries. */
const HOT = [
  4,
  8,
  16,
  20,
  24,
  32,
  36,
  40,
  48,
  56,
  64,
  72,
  80,
  88,
  96,
  100,
  104,
  108,
  112,
  CLUSTER,
  CLUSTER + 8,
  2 * CLUSTER,
  3 * CLUSTER,
  4 * CLUSTER,
  4 * CLUSTER + 8,
  5 * CLUSTER,
];

let dir: string | undefined;
let template: Uint8Array | undefined;
let serial = 0;

/** A small image with data written in several places (so L2 tables and refcounts exist). */
async function makeTemplate(path: string): Promise<Uint8Array> {
  await createQcow2(path, { size: 1 << 20, clusterSize: CLUSTER });
  const img = await Qcow2Image.open(path);
  for (const at of [0, 4096, 300_000, 1_000_000 - 1024]) {
    await img.write(at, new Uint8Array(1024).fill(at & 0xff));
  }
  await img.flush();
  img.close();
  return await Deno.readFile(path);
}

/**
 * The qcow2 target.
 *
 * @example
 * ```ts
 * await qcow2Target.init!();
 * ```
 */
export const qcow2Target: FuzzTarget = {
  name: "qcow2",
  description:
    "Qcow2Image.open + reads + a write on a corrupted file: works, Qcow2FormatError or BlockError",
  async init(): Promise<void> {
    if (dir) return;
    dir = await Deno.makeTempDir({ prefix: "vmesh-fuzz-qcow2-" });
    template = await makeTemplate(`${dir}/template.qcow2`);
    globalThis.addEventListener("unload", () => {
      try {
        Deno.removeSync(dir!, { recursive: true });
      } catch { /* already gone */ }
    });
  },
  generate(r: Prng): Uint8Array {
    return mutate(template!, r, HOT);
  },
  async run(input: Uint8Array): Promise<Outcome> {
    await this.init!();
    // The header decoder alone first (its own contract), then the whole open on a file.
    await expecting([Qcow2FormatError], () => decodeQcow2Header(input, input.length));
    const path = `${dir}/fuzz-${serial++ % 4}.qcow2`;
    await Deno.writeFile(path, input);
    const readOnly = (input.length & 1) === 1;
    let img: Qcow2Image | undefined;
    try {
      return await expecting([Qcow2FormatError, BlockError], async () => {
        img = await Qcow2Image.open(path, { readOnly });
        const size = img.info().sizeBytes;
        for (const at of [0, 4096, 300_000, size - 4096]) {
          if (at >= 0 && at + 4096 <= size) await img.read(at, 4096);
        }
        if (!readOnly && size >= 8192) {
          await img.write(size - 8192, new Uint8Array(1536).fill(7));
          await img.flush();
        }
      });
    } finally {
      img?.close();
    }
  },
};
