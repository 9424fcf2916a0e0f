/**
 * vmesh memory service: the content-addressed page store for snapshots, clones and
 * migration, on `vmesh.memory.<op>`.
 *
 *   deno run -A services/memory/main.ts [--store objects|dir:PATH] [--bucket vmesh-pages]
 *
 * `objects` (default) keeps pages in a JetStream object store on the bus's server (it
 * must run with -js, as the embedded one does); `dir:PATH` keeps them in a directory.
 * NATS_URL selects the server (unset: a private embedded nats-server). Runs until
 * SIGINT/SIGTERM, then stops serving, drains and exits 0.
 * @module
 */

import { busHealth, connect, ServiceCli, untilSignal, watchLifeline } from "@vmesh/bus";
import denoJson from "./deno.json" with { type: "json" };
import { DirStore } from "./dir_store.ts";
import { DEFAULT_BUCKET, JetStreamStore } from "./object_store.ts";
import { DEFAULT_MAX_PAGE, servePages, SERVICE_NAME } from "./page_service.ts";
import type { PageStore } from "./page_store.ts";

const USAGE = "usage: memory/main.ts [--store objects|dir:PATH] [--bucket vmesh-pages] " +
  "[--max-page 65536] [--max-request BYTES] [--http [HOST:]PORT]";

// Typed explicitly so `cli.fail(...)` narrows like a never-returning call.
const cli: ServiceCli = new ServiceCli(SERVICE_NAME, USAGE);

async function main(): Promise<void> {
  watchLifeline({ name: SERVICE_NAME });
  const flags = cli.parse({
    store: { type: "string", default: "objects" },
    bucket: { type: "string", default: DEFAULT_BUCKET },
    "max-page": { type: "string" },
    "max-request": { type: "string" },
    http: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (!flags) return;
  const maxPage = cli.positiveInt("max-page", flags["max-page"], DEFAULT_MAX_PAGE);
  const maxRequest = cli.positiveInt("max-request", flags["max-request"]);
  cli.checkHttp(flags.http);
  if (flags.store !== "objects" && !flags.store.startsWith("dir:")) {
    cli.fail(`--store must be objects or dir:PATH\n${USAGE}`);
  }

  const signal = untilSignal();
  const bus = await connect({ name: SERVICE_NAME });
  let store: PageStore;
  try {
    store = flags.store === "objects"
      ? await JetStreamStore.open(bus.nc, flags.bucket)
      : await DirStore.open(flags.store.slice(4));
  } catch (err) {
    await bus.close();
    const hint = flags.store === "objects"
      ? " (does the server run with -js? or use --store dir:PATH)"
      : "";
    cli.fail(`cannot open store ${flags.store}: ${(err as Error).message}${hint}`, 1);
  }
  let svc;
  try {
    svc = await servePages(bus, store, { version: denoJson.version, maxPage, maxRequest });
  } catch (err) {
    await bus.close();
    cli.fail(`cannot serve: ${(err as Error).message}`, 1);
  }
  const http = cli.startHttp(flags.http, { health: busHealth(bus.nc, svc.prefix) });
  console.error(`${SERVICE_NAME} ready: ${svc.prefix} store=${store.kind} max-page=${maxPage}`);
  const sig = await signal;
  console.error(`${SERVICE_NAME}: ${sig}, draining`);
  await http?.close();
  await svc.stop();
  await store.close();
  await bus.close();
  Deno.exit(0);
}

if (import.meta.main) await main();
