/**
 * vmesh disk service: serves one block backend on `vmesh.<vm>.<device>.<op>`.
 *
 *   deno run -A services/disk/main.ts --vm vm1 --device disk0 --image disk.img [--read-only]
 *   deno run -A services/disk/main.ts --image base.img --overlay vm1.cow [--cluster-size 65536]
 *   deno run -A services/disk/main.ts --image disk.qcow2 [--format qcow2]
 *   deno run -A services/disk/main.ts --image base.img --overlay vm1.qcow2 --overlay-format qcow2
 *
 * NATS_URL selects the server (unset: a private embedded nats-server). Runs until
 * SIGINT/SIGTERM, then stops serving, drains the connection and exits 0.
 * @module
 */

import { busHealth, connect, ServiceCli, untilSignal, watchLifeline } from "@vmesh/bus";
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
  "[--http [HOST:]PORT]";

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
    http: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (!flags) return;
  if (!flags.image) cli.fail(`--image is required\n${USAGE}`);
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

  let backend: BlockBackend;
  let kind: string;
  try {
    const format: ImageFormat = given ?? await probeFormat(flags.image);
    if (flags.overlay) {
      const clusterSize = cli.positiveInt(
        "cluster-size",
        flags["cluster-size"],
        DEFAULT_CLUSTER_SIZE,
      );
      // An existing overlay keeps its format; a new one is qcow2 over a qcow2 base.
      kind = await exists(flags.overlay)
        ? (await probeFormat(flags.overlay) === "qcow2" ? "qcow2" : "cow")
        : overlayFormat ?? (format === "qcow2" ? "qcow2" : "cow");
      if (!await exists(flags.overlay)) {
        if (kind === "qcow2") {
          const base = await Deno.realPath(flags.image);
          const baseSize = await openImage(base, { format, readOnly: true }).then((b) => {
            const size = b.info().sizeBytes;
            b.close();
            return size;
          });
          await createQcow2(flags.overlay, {
            clusterSize,
            backingFile: base,
            backingFormat: format,
            backingSize: baseSize,
          });
        } else await CowOverlay.create(flags.overlay, flags.image, { clusterSize });
      }
      if (kind === "qcow2") {
        backend = await openImage(flags.overlay, {
          format: "qcow2",
          readOnly: flags["read-only"],
          sectorSize,
          backingPath: flags.image,
          backingFormat: format,
        });
      } else {
        if (format !== "raw") {
          throw new Error(
            `the base image is ${format}; a vmesh COW overlay needs a raw base ` +
              `(use a new --overlay file with --overlay-format qcow2)`,
          );
        }
        backend = await CowOverlay.open(flags.overlay, {
          readOnly: flags["read-only"],
          basePath: flags.image,
          sectorSize,
        });
      }
    } else {
      // The probed format is not passed on: openImage then guards a probed raw image.
      backend = await openImage(flags.image, {
        format: given,
        readOnly: flags["read-only"],
        sectorSize,
      });
      kind = format;
    }
  } catch (err) {
    cli.fail(`cannot open ${flags.overlay ?? flags.image}: ${(err as Error).message}`, 1);
  }

  const signal = untilSignal();
  const bus = await connect({ name: `${SERVICE_NAME}.${flags.vm}.${flags.device}` });
  let svc;
  try {
    svc = await serveBlock(bus, backend, {
      vm: flags.vm,
      device: flags.device,
      version: denoJson.version,
      limits,
      checkpoint: checkpointHandler({
        vm: flags.vm,
        device: flags.device,
        backend,
        kind,
        image: resolve(flags.image),
        overlay: flags.overlay ? resolve(flags.overlay) : undefined,
      }),
      metadata: {
        backend: kind,
        image: flags.image,
        ...(flags.overlay ? { overlay: flags.overlay } : {}),
      },
    });
  } catch (err) {
    await bus.close();
    cli.fail(`cannot serve: ${(err as Error).message}`, 1);
  }
  const http = cli.startHttp(flags.http, { health: busHealth(bus.nc, svc.prefix) });
  const info = backend.info();
  for (const note of backend instanceof Qcow2Image ? backend.notes : []) {
    console.error(`${SERVICE_NAME}: ${flags.overlay ?? flags.image}: ${note}`);
  }
  console.error(
    `${SERVICE_NAME} ready: ${svc.prefix} ${kind} ${flags.overlay ?? flags.image} ` +
      `${info.sizeBytes} bytes${info.readOnly ? " read-only" : ""} id=${svc.id}`,
  );
  const sig = await signal;
  console.error(`${SERVICE_NAME}: ${sig}, draining`);
  await http?.close();
  await svc.stop();
  await bus.close();
  await backend.flush().catch(() => {});
  backend.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
