/**
 * `./vmesh snapshots`: lists the snapshots of the memory service with their VM, RAM, stored
 * size and age; `--rm NAME` removes one (its pages stay: other snapshots may share them).
 * @module
 */
import { parseArgs } from "node:util";
import { BusError, memory, MEMORY_PREFIX } from "@vmesh/bus";
import { openSnapshotBusOrSay } from "./snapshot_bus.ts";

/** `./vmesh snapshots --help`. */
export const SNAPSHOTS_USAGE =
  `usage: ./vmesh snapshots [--rm NAME] [--gc [--dry-run] [--gc-min-age S]] [--store STORE]

Lists the snapshots in the memory service: name, VM, guest RAM, the size of its
distinct non-zero pages, and age. Without NATS_URL it reads the default store.

  --rm NAME           remove snapshot NAME (pages shared with others stay)
  --gc                remove the pages no snapshot names (RAM, images, disk layers),
                      but those stored or found present in the last --gc-min-age
                      seconds (default 600: a snapshot being taken stores its pages
                      before its manifest)
  --dry-run           with --gc: count only
  --gc-min-age S      with --gc: the grace in seconds (0: none; only for a store
                      nothing writes to meanwhile)
  --store STORE       the store when no memory service runs on the bus
                      (default dir:.vmesh/snapshots)
  -h, --help          this text`;

const say = (l: string) => console.error(`vmesh snapshots: ${l}`);

/** "3s", "5m", "2h", "4d". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Runs `./vmesh snapshots`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        rm: { type: "string" },
        gc: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        "gc-min-age": { type: "string" },
        store: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (e) {
    console.error(`vmesh snapshots: ${(e as Error).message} (see ./vmesh snapshots --help)`);
    return 2;
  }
  if (values.help) {
    console.log(SNAPSHOTS_USAGE);
    return 0;
  }
  const minAge = values["gc-min-age"];
  if (minAge !== undefined && !/^\d+(\.\d+)?$/.test(minAge)) {
    console.error(`vmesh snapshots: --gc-min-age wants seconds, got '${minAge}'`);
    return 2;
  }
  const sb = await openSnapshotBusOrSay({
    command: "snapshots",
    store: values.store,
    privateBus: true,
    say: () => {},
    fail: say,
  });
  if (!sb) return 1;
  const t = { prefix: MEMORY_PREFIX };
  try {
    if (values.rm !== undefined) {
      await sb.bus.request(t, memory.ops.delete_manifest, { name: values.rm }, { retries: 0 });
      console.log(`removed ${values.rm}`);
      return 0;
    }
    if (values.gc) {
      const r = await sb.bus.request(t, memory.ops.collect_garbage, {
        minAgeMs: minAge === undefined ? 0 : Number(minAge) * 1000,
        noGrace: minAge !== undefined,
        dryRun: values["dry-run"],
      }, { retries: 0, timeoutMs: 600_000 });
      console.log(
        `${r.manifests} snapshots name ${r.referenced} stored pages; ` +
          `${values["dry-run"] ? "would remove" : "removed"} ${r.removed} unnamed pages ` +
          `(${(Number(r.removedBytes) / 1048576).toFixed(1)} MiB); kept ${r.keptYoung} young ones` +
          (r.broken.length ? `; incomplete snapshots: ${r.broken.join(", ")}` : ""),
      );
      return 0;
    }
    const { names } = await sb.bus.request(t, memory.ops.list_manifests, {});
    const rows = [["NAME", "VM", "RAM", "SIZE", "AGE"]];
    for (const name of names) {
      try {
        const { manifest: m } = await sb.bus.request(t, memory.ops.get_manifest, { name }, {
          retries: 0,
        });
        rows.push([
          name,
          m?.vm ?? "?",
          `${Math.round((m?.ramSize ?? 0) / 1048576)}M`,
          `${((m?.ramPagesStored ?? 0) * 4096 / 1048576).toFixed(1)}M`,
          m?.createdUnixMs ? formatAge(Date.now() - m.createdUnixMs) : "?",
        ]);
      } catch (e) {
        if (!(e instanceof BusError)) throw e;
        rows.push([name, "?", "?", "?", `unreadable: ${e.message}`]);
      }
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
    return 0;
  } catch (e) {
    if (e instanceof BusError) {
      say(e.message);
      return 1;
    }
    throw e;
  } finally {
    await sb.close();
  }
}
