/**
 * `./vmesh export SNAP -o vm.tar`: one artifact with everything a snapshot needs to run on any
 * host (appliance_layout.ts): its manifest, every page it names (RAM, index pages, firmware,
 * kernel, initrd), each disk's base image and frozen point, the machine's flags, and SHA-256
 * sums of it all. The snapshot is fetched and checked whole first; the file appears under its
 * name only once complete.
 * @module
 */
import { memory } from "@vmesh/bus";
import { createHash } from "node:crypto";
import { basename, dirname, resolve } from "node:path";
import { fetchSnapshot, SnapshotError } from "../services/cpu/snapshot/mod.ts";
import { chunks, indexPages, sha256Hex } from "../services/cpu/snapshot/ram_pages.ts";
import { parseCommandArgs } from "./command_args.ts";
import { openSnapshotBusOrSay, SnapshotCliError } from "./snapshot_bus.ts";
import { fetchDiskLayer } from "./disk_layers.ts";
import {
  APPLIANCE_FORMAT,
  APPLIANCE_VERSION,
  type ApplianceDisk,
  type ApplianceInfo,
  layerData,
  type LayerPlan,
  MEMBERS,
  PAGE_RECORD,
  planLayer,
} from "./appliance_layout.ts";
import { TarWriter } from "./appliance_tar.ts";

/** `./vmesh export --help`. */
export const EXPORT_USAGE = `usage: ./vmesh export SNAP -o FILE [--store STORE]

Writes snapshot SNAP (see ./vmesh snapshots) as one tar file that ./vmesh import
runs on any host: the manifest, every page it names, each disk's base image and
frozen point (64 KiB chunks, zero and repeated chunks stored once), the machine's
flags, and a SHA256SUMS member over everything. The disk layers are read from
this host's files, or, when they are not here, from the memory service (for
snapshots taken with ./vmesh snapshot --disk-layers).

  -o, --output FILE   the tar file to write (refused if it exists)
  --store STORE       the memory service's store when none runs on the bus
                      (default dir:.vmesh/snapshots)
  -h, --help          this text

Environment: NATS_URL selects the bus (unset: a private nats-server).`;

const say = (l: string) => console.error(`vmesh export: ${l}`);

/** A member to write: its name, size and bytes. */
interface Member {
  name: string;
  size: number;
  data: () => Uint8Array | AsyncIterable<Uint8Array>;
}

/** Runs `./vmesh export`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandArgs({
    command: "export",
    usage: EXPORT_USAGE,
    args,
    options: {
      output: { type: "string", short: "o" },
      store: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    check({ values, positionals }) {
      if (positionals.length !== 1) throw new Error("give exactly one snapshot name");
      if (!values.output) throw new Error("give the file to write with -o FILE");
    },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals: [snap] } = parsed;
  const out = resolve(values.output!);
  if (await Deno.lstat(out).then(() => true, () => false)) {
    say(`${out} exists already: remove it or give another -o`);
    return 1;
  }
  const sb = await openSnapshotBusOrSay({
    command: "export",
    store: values.store,
    privateBus: true,
    say: () => {},
    fail: say,
  });
  if (!sb) return 1;
  const t0 = performance.now();
  const tmp = `${dirname(out)}/.${basename(out)}.${crypto.randomUUID().slice(0, 8)}.partial`;
  let layers: string | undefined;
  try {
    const s = await fetchSnapshot(sb.bus, snap);
    const m = s.manifest;
    // Every page the manifest names: RAM pages, the index pages over them, image pages.
    const pages = new Map(s.pages);
    for (const ip of indexPages(s.hashes)) pages.set(sha256Hex(ip), ip);
    for (const img of m.images ?? []) {
      const bytes = s.images.get(img.role)!;
      for (const c of chunks(bytes)) pages.set(sha256Hex(c), c);
    }
    for (const h of [...(m.pageIndex ?? []), ...(m.images ?? []).flatMap((i) => i.pages)]) {
      if (!pages.has(h)) throw new SnapshotCliError(`snapshot ${snap}: page ${h} not rebuilt`);
    }
    const plans: { disk: ApplianceDisk; base: LayerPlan; point?: LayerPlan }[] = [];
    for (const d of m.disks ?? []) {
      if (!d.frozen) throw new SnapshotCliError(`snapshot ${snap} holds no point of ${d.device}`);
      const layer = async (path: string, what: string, stored?: memory.DiskLayer | null) => {
        if (stored && !await Deno.stat(path).then(() => true, () => false)) {
          // Not on this host: rebuilt from the memory service (./vmesh snapshot --disk-layers).
          layers ??= await Deno.makeTempDir({ dir: dirname(out), prefix: ".export-" });
          const copy = `${layers}/${d.device}.${what.split(" ")[0]}`;
          try {
            await fetchDiskLayer(sb.bus, stored, copy, `the ${what} of disk ${d.device}`);
          } catch (e) {
            throw new SnapshotCliError(`cannot rebuild ${path}: ${(e as Error).message}`);
          }
          path = copy;
        }
        try {
          return await planLayer(path);
        } catch (e) {
          throw new SnapshotCliError(
            `disk ${d.device}: cannot read its ${what} ${path} (${(e as Error).message}); ` +
              `export on the host that holds it, or take the snapshot with --disk-layers`,
          );
        }
      };
      const base = await layer(d.image, "base image", d.baseLayer);
      const point = d.overlay === d.image
        ? undefined
        : await layer(d.overlay, "point", d.pointLayer);
      plans.push({
        disk: { device: d.device, backend: d.backend, base: base.info, point: point?.info },
        base,
        point,
      });
    }
    const info: ApplianceInfo = {
      format: APPLIANCE_FORMAT,
      version: APPLIANCE_VERSION,
      snapshot: snap,
      vm: m.vm,
      createdUnixMs: m.createdUnixMs ?? 0,
      exportedUnixMs: Date.now(),
      machine: s.flags,
      pages: pages.size,
      disks: plans.map((p) => p.disk),
    };
    const idx = new Uint8Array(pages.size * PAGE_RECORD);
    const view = new DataView(idx.buffer);
    let pageBytes = 0, i = 0;
    for (const [h, data] of pages) {
      idx.set(Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16)), i * PAGE_RECORD);
      view.setUint32(i * PAGE_RECORD + 32, data.length, true);
      pageBytes += data.length;
      i++;
    }
    const members: Member[] = [
      {
        name: MEMBERS.info,
        ...sized(new TextEncoder().encode(JSON.stringify(info, null, 2) + "\n")),
      },
      {
        name: MEMBERS.snapshot,
        ...sized(memory.ops.put_manifest.request.encode({ name: snap, manifest: m })),
      },
      { name: MEMBERS.pageIndex, ...sized(idx) },
      { name: MEMBERS.pages, size: pageBytes, data: () => pages.values() as never },
    ];
    for (const p of plans) {
      for (const [role, plan] of [["base", p.base], ["point", p.point]] as const) {
        if (!plan) continue;
        members.push({ name: MEMBERS.map(p.disk.device, role), ...sized(plan.map) });
        members.push({
          name: MEMBERS.data(p.disk.device, role),
          size: plan.info.dataBytes,
          data: () => layerData(plan),
        });
      }
    }

    const file = await Deno.open(tmp, { write: true, createNew: true });
    const sums: string[] = [];
    try {
      const tar = new TarWriter(file);
      for (const mem of members) {
        const hash = createHash("sha256");
        await tar.add(mem.name, mem.size, tee(mem.data(), (b) => hash.update(b)));
        sums.push(`${hash.digest("hex")}  ${mem.name}\n`);
      }
      await tar.add(MEMBERS.sums, ...sizedArgs(new TextEncoder().encode(sums.join(""))));
      await tar.finish();
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, out);
    const { size } = await Deno.stat(out);
    const mib = (b: number) => (b / 1048576).toFixed(1);
    const disks = plans.map((p) =>
      `${p.disk.device} ${mib(p.base.info.dataBytes)} MiB base` +
      (p.point ? ` + ${mib(p.point.info.dataBytes)} MiB point` : "")
    );
    console.log(
      `${out}: ${mib(size)} MiB (${size} bytes): ${pages.size} pages (${mib(pageBytes)} MiB)` +
        `${disks.length ? `, ${disks.join(", ")}` : ""}; took ` +
        `${((performance.now() - t0) / 1000).toFixed(2)} s`,
    );
    return 0;
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    if (e instanceof SnapshotCliError || e instanceof SnapshotError) {
      say(e.message);
      return 1;
    }
    throw e;
  } finally {
    if (layers) await Deno.remove(layers, { recursive: true }).catch(() => {});
    await sb.close();
  }
}

function sized(b: Uint8Array): { size: number; data: () => Uint8Array } {
  return { size: b.length, data: () => b };
}

function sizedArgs(b: Uint8Array): [number, Uint8Array] {
  return [b.length, b];
}

/** `src`'s parts, each also handed to `see` (the member's running hash). */
async function* tee(
  src: Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  see: (b: Uint8Array) => void,
): AsyncGenerator<Uint8Array> {
  for await (const b of src instanceof Uint8Array ? [src] : src) {
    see(b);
    yield b;
  }
}
