/**
 * Reading an appliance (appliance_layout.ts) for `./vmesh import`, checking all of it before
 * anything is stored or run: every tar header's checksum, every member against `SHA256SUMS`
 * (which must come last, so a truncated file is caught), the layout's format and version, the
 * manifest's encoding, every page against its SHA-256, and that every page the manifest names
 * and every disk layer it needs is there. Disk `.data` members go to files in a staging
 * directory; the rest is held in memory.
 * @module
 */
import { createHash } from "node:crypto";
import { memory } from "@vmesh/bus";
import { HASHES_PER_INDEX, pageHashAt } from "../services/cpu/snapshot/ram_pages.ts";
import {
  APPLIANCE_FORMAT,
  APPLIANCE_VERSION,
  type ApplianceInfo,
  HASH_BYTES,
  hex,
  type LayerRole,
  MEMBERS,
  PAGE_RECORD,
  sha256,
} from "./appliance_layout.ts";
import { TarError, TarReader } from "./appliance_tar.ts";

/** An appliance that cannot be imported: what is wrong with it. */
export class ApplianceError extends Error {}

/** One disk layer of a checked appliance. */
export interface ReadLayer {
  map: Uint8Array;
  /** The staged `.data` member. */
  dataFile: string;
}

/** A checked appliance. */
export interface Appliance {
  info: ApplianceInfo;
  /** The snapshot's name and manifest as exported. */
  snapshot: memory.PutManifest;
  /** Every page by hex SHA-256. */
  pages: Map<string, Uint8Array>;
  /** Layers by `<device>.<role>`. */
  layers: Map<string, ReadLayer>;
}

const MEMBER_NAME =
  /^(vmesh-appliance\.json|snapshot\.pb|pages\.idx|pages\.bin|SHA256SUMS|disks\/[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(base|point)\.(map|data))$/;
/** Members held in memory larger than this are refused (a header lying about its size). */
const MAX_IN_MEMORY = 8 * 1024 ** 3;

/** Reads and checks the appliance at `path`, staging disk data in `staging` (which must exist). */
export async function readAppliance(path: string, staging: string): Promise<Appliance> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new ApplianceError(`cannot open it: ${(e as Error).message}`);
  }
  const held = new Map<string, Uint8Array>();
  const staged = new Map<string, string>();
  const sums = new Map<string, string>();
  let sumsText: string | undefined;
  try {
    const tar = new TarReader(file);
    for (let n = 0;; n++) {
      const e = await tar.next();
      if (!e) break;
      if (n === 0 && e.name !== MEMBERS.info) {
        throw new ApplianceError(`its first member is ${e.name}, not ${MEMBERS.info}`);
      }
      if (!MEMBER_NAME.test(e.name)) throw new ApplianceError(`unexpected member ${e.name}`);
      if (sums.has(e.name) || e.name === MEMBERS.sums && sumsText !== undefined) {
        throw new ApplianceError(`member ${e.name} appears twice`);
      }
      if (sumsText !== undefined) throw new ApplianceError(`member ${e.name} after SHA256SUMS`);
      const hash = createHash("sha256");
      if (e.name.endsWith(".data")) {
        const to = `${staging}/${e.name.replace(/\//g, "_")}`;
        const out = await Deno.open(to, { write: true, createNew: true });
        try {
          for await (const b of tar.data(e.name)) {
            hash.update(b);
            for (let o = 0; o < b.length;) o += await out.write(b.subarray(o));
          }
        } finally {
          out.close();
        }
        staged.set(e.name, to);
      } else {
        if (e.size > MAX_IN_MEMORY) {
          throw new ApplianceError(`member ${e.name} claims ${e.size} bytes`);
        }
        const b = await tar.bytes(e.name, e.size);
        hash.update(b);
        if (e.name === MEMBERS.sums) {
          sumsText = new TextDecoder().decode(b);
          continue;
        }
        held.set(e.name, b);
      }
      sums.set(e.name, hash.digest("hex"));
    }
  } catch (e) {
    if (e instanceof TarError) throw new ApplianceError(e.message);
    throw e;
  } finally {
    file.close();
  }
  if (sumsText === undefined) throw new ApplianceError(`it has no ${MEMBERS.sums} member`);
  const listed = new Map<string, string>();
  for (const line of sumsText.split("\n")) {
    if (!line) continue;
    const m = /^([0-9a-f]{64}) {2}(\S+)$/.exec(line);
    if (!m) throw new ApplianceError(`${MEMBERS.sums} has a bad line ${JSON.stringify(line)}`);
    listed.set(m[2], m[1]);
  }
  for (const [name, h] of sums) {
    if (!listed.has(name)) throw new ApplianceError(`member ${name} is not in ${MEMBERS.sums}`);
    if (listed.get(name) !== h) {
      throw new ApplianceError(`member ${name} does not match its SHA-256 (the file is corrupt)`);
    }
  }
  for (const name of listed.keys()) {
    if (!sums.has(name)) throw new ApplianceError(`member ${name} is missing`);
  }
  return check(held, staged);
}

/** The layout inside the (checksummed) members. */
function check(held: Map<string, Uint8Array>, staged: Map<string, string>): Appliance {
  const need = (name: string) => {
    const b = held.get(name);
    if (!b) throw new ApplianceError(`member ${name} is missing`);
    return b;
  };
  let info: ApplianceInfo;
  try {
    info = JSON.parse(new TextDecoder().decode(need(MEMBERS.info)));
  } catch (e) {
    if (e instanceof ApplianceError) throw e;
    throw new ApplianceError(`${MEMBERS.info} is not JSON: ${(e as Error).message}`);
  }
  if (info?.format !== APPLIANCE_FORMAT) {
    throw new ApplianceError(
      `it is not a vmesh appliance (format ${JSON.stringify(info?.format)})`,
    );
  }
  if (info.version !== APPLIANCE_VERSION) {
    throw new ApplianceError(
      `layout version ${info.version}; this vmesh reads version ${APPLIANCE_VERSION}`,
    );
  }
  let snapshot: memory.PutManifest;
  try {
    snapshot = memory.ops.put_manifest.request.decode(need(MEMBERS.snapshot));
  } catch (e) {
    if (e instanceof ApplianceError) throw e;
    throw new ApplianceError(`${MEMBERS.snapshot} does not decode: ${(e as Error).message}`);
  }
  const m = snapshot.manifest;
  if (!m) throw new ApplianceError(`${MEMBERS.snapshot} holds no manifest`);

  const idx = need(MEMBERS.pageIndex), bin = need(MEMBERS.pages);
  if (idx.length !== info.pages * PAGE_RECORD) {
    throw new ApplianceError(
      `${MEMBERS.pageIndex} has ${idx.length} bytes for ${info.pages} pages`,
    );
  }
  const view = new DataView(idx.buffer, idx.byteOffset, idx.length);
  const pages = new Map<string, Uint8Array>();
  let o = 0;
  for (let i = 0; i < info.pages; i++) {
    const h = hex(idx.subarray(i * PAGE_RECORD, i * PAGE_RECORD + HASH_BYTES));
    const len = view.getUint32(i * PAGE_RECORD + HASH_BYTES, true);
    if (o + len > bin.length) throw new ApplianceError(`${MEMBERS.pages} ends before page ${i}`);
    const page = bin.subarray(o, o + len);
    if (hex(sha256(page)) !== h) throw new ApplianceError(`page ${h} does not match its hash`);
    pages.set(h, page);
    o += len;
  }
  if (o !== bin.length) throw new ApplianceError(`${MEMBERS.pages} has bytes past its last page`);

  const want = (h: string, what: string) => {
    if (!pages.has(h)) throw new ApplianceError(`page ${h} (${what}) is missing from it`);
    return pages.get(h)!;
  };
  (m.pageIndex ?? []).forEach((h, i) => {
    const ip = want(h, `RAM index page ${i}`);
    for (let p = 0; p < Math.min(HASHES_PER_INDEX, ip.length / HASH_BYTES); p++) {
      const ph = pageHashAt(ip, p);
      if (ph) want(ph, `RAM page ${i * HASHES_PER_INDEX + p}`);
    }
  });
  for (const img of m.images ?? []) for (const h of img.pages) want(h, `${img.role} image`);

  const layers = new Map<string, ReadLayer>();
  for (const d of m.disks ?? []) {
    const disk = info.disks?.find((x) => x.device === d.device);
    if (!disk) throw new ApplianceError(`${MEMBERS.info} does not describe disk ${d.device}`);
    const roles: LayerRole[] = d.overlay === d.image ? ["base"] : ["base", "point"];
    for (const role of roles) {
      const layer = disk[role];
      const map = held.get(MEMBERS.map(d.device, role));
      const dataFile = staged.get(MEMBERS.data(d.device, role));
      if (!layer || !map || !dataFile) {
        throw new ApplianceError(`the ${role} layer of disk ${d.device} is missing`);
      }
      layers.set(`${d.device}.${role}`, { map, dataFile });
    }
  }
  return { info, snapshot, pages, layers };
}
