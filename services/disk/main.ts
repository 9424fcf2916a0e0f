/**
 * vmesh disk service: serves block backends on `vmesh.<vm>.<device>.<op>` (one, or several with
 * `--drive`: one process for many VMs' disks).
 *
 *   deno run -A services/disk/main.ts --vm vm1 --device disk0 --image disk.img [--read-only]
 *   deno run -A services/disk/main.ts --image base.img --overlay vm1.cow [--cluster-size 65536]
 *   deno run -A services/disk/main.ts --image disk.qcow2 [--format qcow2]
 *   deno run -A services/disk/main.ts --image base.img --overlay vm1.qcow2 --overlay-format qcow2
 *   deno run -A services/disk/main.ts --drive vm=vm1,device=disk0,file=base.img,overlay=vm1.cow \
 *       --drive vm=vm2,device=disk0,file=base.img,overlay=vm2.cow   # one process, many disks
 *
 * NATS_URL selects the server (unset: a private embedded nats-server). Runs until
 * SIGINT/SIGTERM, then stops serving, drains the connection and exits 0.
 * @module
 */

import {
  busHealth,
  connect,
  type DeviceService,
  ServiceCli,
  untilSignal,
  watchLifeline,
} from "@vmesh/bus";
import denoJson from "./deno.json" with { type: "json" };
import { resolve } from "node:path";
import type { BlockBackend } from "./block_backend.ts";
import { checkpointHandler } from "./disk_point.ts";
import { DEFAULT_MAX_TRANSFER, serveBlock, SERVICE_NAME } from "./block_service.ts";
import { CowOverlay, DEFAULT_CLUSTER_SIZE } from "./cow_overlay.ts";
import { type ImageFormat, openImage, parseImageFormat, probeFormat } from "./image_open.ts";
import { createQcow2 } from "./qcow2_create.ts";
import { Qcow2Image } from "./qcow2_image.ts";

const USAGE = "usage: disk/main.ts --image PATH [--format raw|qcow2] [--overlay PATH] " +
  "[--overlay-format cow|qcow2] [--vm vm1] [--device disk0] [--read-only] [--cluster-size N] [--sector-size 512] [--max-transfer N] [--no-align] " +
  "[--drive vm=V,device=D,file=PATH[,overlay=PATH][,readonly=on]]... [--http [HOST:]PORT]";

/** One disk this process serves: `--image`/`--vm`/`--device`..., or a `--drive`. */
interface DiskSpec {
  vm: string;
  device: string;
  image: string;
  overlay?: string;
  readOnly: boolean;
}

/** Parses one `--drive vm=V,device=D,file=PATH[,overlay=PATH][,readonly=on]` (QEMU's keys). */
function parseDrive(value: string): DiskSpec {
  const kv = new Map<string, string>();
  for (const part of value.split(",")) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`'${part}' is not key=value`);
    kv.set(part.slice(0, eq), part.slice(eq + 1));
  }
  const keys = ["vm", "device", "file", "overlay", "readonly"];
  const unknown = [...kv.keys()].find((k) => !keys.includes(k));
  if (unknown) throw new Error(`unknown key ${unknown} (keys: ${keys.join(", ")})`);
  const file = kv.get("file");
  if (!file) throw new Error("file=PATH is required");
  const readonly = kv.get("readonly") ?? "off";
  if (readonly !== "on" && readonly !== "off") throw new Error("readonly=on|off");
  return {
    vm: kv.get("vm") ?? Deno.env.get("VMESH_VM") ?? "vm1",
    device: kv.get("device") ?? "disk0",
    image: file,
    overlay: kv.get("overlay"),
    readOnly: readonly === "on",
  };
}

/** The flags every disk of this process shares. */
interface SharedFlags {
  given?: ImageFormat;
  overlayFormat?: string;
  clusterFlag?: string;
  sectorSize: number;
}

/** Opens (creating a new overlay if needed) the backend of disk `d`; fails the process if not. */
async function openDisk(
  d: DiskSpec,
  { given, overlayFormat, clusterFlag, sectorSize }: SharedFlags,
): Promise<{ backend: BlockBackend; kind: string }> {
  let backend: BlockBackend;
  let kind: string;
  try {
    const format: ImageFormat = given ?? await probeFormat(d.image);
    if (d.overlay) {
      const clusterSize = cli.positiveInt(
        "cluster-size",
        clusterFlag,
        DEFAULT_CLUSTER_SIZE,
      );
      // An existing overlay keeps its format; a new one is qcow2 over a qcow2 base.
      kind = await exists(d.overlay)
        ? (await probeFormat(d.overlay) === "qcow2" ? "qcow2" : "cow")
        : overlayFormat ?? (format === "qcow2" ? "qcow2" : "cow");
      if (!await exists(d.overlay)) {
        if (kind === "qcow2") {
          const base = await Deno.realPath(d.image);
          const baseSize = await openImage(base, { format, readOnly: true }).then((b) => {
            const size = b.info().sizeBytes;
            b.close();
            return size;
          });
          await createQcow2(d.overlay, {
            clusterSize,
            backingFile: base,
            backingFormat: format,
            backingSize: baseSize,
          });
        } else await CowOverlay.create(d.overlay, d.image, { clusterSize });
      }
      if (kind === "qcow2") {
        backend = await openImage(d.overlay, {
          format: "qcow2",
          readOnly: d.readOnly,
          sectorSize,
          backingPath: d.image,
          backingFormat: format,
        });
      } else {
        if (format !== "raw") {
          throw new Error(
            `the base image is ${format}; a vmesh COW overlay needs a raw base ` +
              `(use a new --overlay file with --overlay-format qcow2)`,
          );
        }
        backend = await CowOverlay.open(d.overlay, {
          readOnly: d.readOnly,
          basePath: d.image,
          sectorSize,
        });
      }
    } else {
      // The probed format is not passed on: openImage then guards a probed raw image.
      backend = await openImage(d.image, {
        format: given,
        readOnly: d.readOnly,
        sectorSize,
      });
      kind = format;
    }
  } catch (err) {
    cli.fail(`cannot open ${d.overlay ?? d.image}: ${(err as Error).message}`, 1);
  }
  return { backend, kind };
}

// Typed explicitly so `cli.fail(...)` narrows like a never-returning call.
const cli: ServiceCli = new ServiceCli(SERVICE_NAME, USAGE);

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function main(): Promise<void> {
  watchLifeline({ name: SERVICE_NAME });
  const flags = cli.parse({
    vm: { type: "string", default: Deno.env.get("VMESH_VM") ?? "vm1" },
    device: { type: "string", default: "disk0" },
    image: { type: "string" },
    overlay: { type: "string" },
    format: { type: "string" },
    "overlay-format": { type: "string" },
    "read-only": { type: "boolean", default: false },
    "cluster-size": { type: "string" },
    "sector-size": { type: "string" },
    "max-transfer": { type: "string" },
    "no-align": { type: "boolean", default: false },
    drive: { type: "string", multiple: true },
    http: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (!flags) return;
  const disks: DiskSpec[] = [];
  if (flags.image) {
    disks.push({
      vm: flags.vm,
      device: flags.device,
      image: flags.image,
      overlay: flags.overlay,
      readOnly: flags["read-only"],
    });
  }
  for (const d of flags.drive ?? []) {
    try {
      disks.push(parseDrive(d));
    } catch (err) {
      cli.fail(`--drive ${d}: ${(err as Error).message}`);
    }
  }
  if (disks.length === 0) cli.fail(`--image (or --drive) is required\n${USAGE}`);
  const names = disks.map((d) => `${d.vm}.${d.device}`);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) cli.fail(`disk ${twice} is given twice`);
  cli.checkHttp(flags.http);
  const sectorSize = cli.positiveInt("sector-size", flags["sector-size"], 512);
  const limits = {
    maxTransfer: cli.positiveInt("max-transfer", flags["max-transfer"], DEFAULT_MAX_TRANSFER),
    requireAlignment: !flags["no-align"],
  };

  let given: ImageFormat | undefined;
  try {
    given = flags.format === undefined ? undefined : parseImageFormat(flags.format);
  } catch (err) {
    cli.fail(`--format ${flags.format}: ${(err as Error).message}`);
  }
  const overlayFormat = flags["overlay-format"];
  if (overlayFormat !== undefined && overlayFormat !== "cow" && overlayFormat !== "qcow2") {
    cli.fail(`--overlay-format ${overlayFormat}: want cow or qcow2`);
  }

  const shared: SharedFlags = {
    given,
    overlayFormat,
    clusterFlag: flags["cluster-size"],
    sectorSize,
  };
  const opened: { d: DiskSpec; backend: BlockBackend; kind: string }[] = [];
  for (const d of disks) opened.push({ d, ...await openDisk(d, shared) });

  const signal = untilSignal();
  const first = disks[0];
  const more = disks.length > 1 ? `+${disks.length - 1}` : "";
  const bus = await connect({ name: `${SERVICE_NAME}.${first.vm}.${first.device}${more}` });
  const served: DeviceService[] = [];
  for (const { d, backend, kind } of opened) {
    try {
      served.push(
        await serveBlock(bus, backend, {
          vm: d.vm,
          device: d.device,
          version: denoJson.version,
          limits,
          checkpoint: checkpointHandler({
            vm: d.vm,
            device: d.device,
            backend,
            kind,
            image: resolve(d.image),
            overlay: d.overlay ? resolve(d.overlay) : undefined,
          }),
          metadata: {
            backend: kind,
            image: d.image,
            ...(d.overlay ? { overlay: d.overlay } : {}),
          },
        }),
      );
    } catch (err) {
      await bus.close();
      cli.fail(`cannot serve ${d.vm}.${d.device}: ${(err as Error).message}`, 1);
    }
  }
  const http = cli.startHttp(flags.http, { health: busHealth(bus.nc, served[0].prefix) });
  opened.forEach(({ d, backend, kind }, i) => {
    const info = backend.info();
    for (const note of backend instanceof Qcow2Image ? backend.notes : []) {
      console.error(`${SERVICE_NAME}: ${d.overlay ?? d.image}: ${note}`);
    }
    console.error(
      `${SERVICE_NAME} ready: ${served[i].prefix} ${kind} ${d.overlay ?? d.image} ` +
        `${info.sizeBytes} bytes${info.readOnly ? " read-only" : ""} id=${served[i].id}`,
    );
  });
  const sig = await signal;
  console.error(`${SERVICE_NAME}: ${sig}, draining`);
  await http?.close();
  for (const svc of served) await svc.stop();
  await bus.close();
  for (const { backend } of opened) {
    await backend.flush().catch(() => {});
    backend.close();
  }
  Deno.exit(0);
}

if (import.meta.main) await main();
