/**
 * vmesh disk service: serves one block backend on `vmesh.<vm>.<device>.<op>`.
 *
 *   deno run -A services/disk/main.ts --vm vm1 --device disk0 --image disk.img [--read-only]
 *   deno run -A services/disk/main.ts --image base.img --overlay vm1.cow [--cluster-size 65536]
 *
 * NATS_URL selects the server (unset: a private embedded nats-server). Runs until
 * SIGINT/SIGTERM, then stops serving, drains the connection and exits 0.
 * @module
 */

import { busHealth, connect, ServiceCli, untilSignal } from "@vmesh/bus";
import denoJson from "./deno.json" with { type: "json" };
import type { BlockBackend } from "./block_backend.ts";
import { DEFAULT_MAX_TRANSFER, serveBlock, SERVICE_NAME } from "./block_service.ts";
import { CowOverlay, DEFAULT_CLUSTER_SIZE } from "./cow_overlay.ts";
import { RawFile } from "./raw_file.ts";

const USAGE = "usage: disk/main.ts --image PATH [--overlay PATH] [--vm vm1] [--device disk0] " +
  "[--read-only] [--cluster-size N] [--sector-size 512] [--max-transfer N] [--no-align] " +
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
  const flags = cli.parse({
    vm: { type: "string", default: Deno.env.get("VMESH_VM") ?? "vm1" },
    device: { type: "string", default: "disk0" },
    image: { type: "string" },
    overlay: { type: "string" },
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

  let backend: BlockBackend;
  let kind: string;
  try {
    if (flags.overlay) {
      if (!await exists(flags.overlay)) {
        const clusterSize = cli.positiveInt(
          "cluster-size",
          flags["cluster-size"],
          DEFAULT_CLUSTER_SIZE,
        );
        await CowOverlay.create(flags.overlay, flags.image, { clusterSize });
      }
      backend = await CowOverlay.open(flags.overlay, {
        readOnly: flags["read-only"],
        basePath: flags.image,
        sectorSize,
      });
      kind = "cow";
    } else {
      backend = await RawFile.open(flags.image, { readOnly: flags["read-only"], sectorSize });
      kind = "raw";
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
