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

import { parseArgs } from "node:util";
import { busHealth, connect, parseHttpListen, startControlHttp } from "@vmesh/bus";
import denoJson from "./deno.json" with { type: "json" };
import { DirStore } from "./dir_store.ts";
import { DEFAULT_BUCKET, JetStreamStore } from "./object_store.ts";
import { DEFAULT_MAX_PAGE, servePages, SERVICE_NAME } from "./page_service.ts";
import type { PageStore } from "./page_store.ts";

const USAGE = "usage: memory/main.ts [--store objects|dir:PATH] [--bucket vmesh-pages] " +
  "[--max-page 65536] [--max-request BYTES] [--http [HOST:]PORT]";

function fail(message: string, code = 2): never {
  console.error(`${SERVICE_NAME}: ${message}`);
  Deno.exit(code);
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) fail(`--${name} must be a positive integer: ${value}`);
  return n;
}

function untilSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(sig, () => resolve(sig));
    }
  });
}

async function main(): Promise<void> {
  let flags;
  try {
    flags = parseArgs({
      args: Deno.args,
      options: {
        store: { type: "string", default: "objects" },
        bucket: { type: "string", default: DEFAULT_BUCKET },
        "max-page": { type: "string" },
        "max-request": { type: "string" },
        http: { type: "string" },
        help: { type: "boolean", default: false },
      },
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (flags.help) {
    console.log(USAGE);
    return;
  }
  const maxPage = positiveInt("max-page", flags["max-page"]) ?? DEFAULT_MAX_PAGE;
  const maxRequest = positiveInt("max-request", flags["max-request"]);
  try {
    parseHttpListen(flags.http);
  } catch (err) {
    fail((err as Error).message);
  }
  if (flags.store !== "objects" && !flags.store.startsWith("dir:")) {
    fail(`--store must be objects or dir:PATH\n${USAGE}`);
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
    fail(`cannot open store ${flags.store}: ${(err as Error).message}${hint}`, 1);
  }
  let svc;
  try {
    svc = await servePages(bus, store, { version: denoJson.version, maxPage, maxRequest });
  } catch (err) {
    await bus.close();
    fail(`cannot serve: ${(err as Error).message}`, 1);
  }
  let http;
  try {
    http = startControlHttp(flags.http, {
      service: SERVICE_NAME,
      health: busHealth(bus.nc, svc.prefix),
    });
  } catch (err) {
    fail(`--http: ${(err as Error).message}`, 1);
  }
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
