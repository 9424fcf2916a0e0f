/**
 * Test harness for guest-level disk tests: the topology `./vmesh boot` composes (console,
 * disk and CPU services as processes on one nats-server), but with the disk services started
 * by the test, so a test can choose their flags (own overlay files), kill and replace them.
 * @module
 */

import { type Bus, connect } from "@vmesh/bus";
import { ConsoleCapture } from "../cli/boot_console.ts";
import {
  batchCmdlineParam,
  type BatchOutput,
  type GuestImages,
  imageArgs,
  parseBatchOutput,
} from "../guest/mod.ts";
import { type ServiceProcess, startService } from "./services_harness.ts";

/** Upper bound for one guest run, so a hung guest ends the test instead of blocking it. */
const HANG_GUARD_MS = 600_000;

/**
 * CPU service arguments of VM `vm` booting the cached Linux guest (`images`) with `memory` of RAM,
 * its console on ttyS0, running `command` in batch mode.
 */
export function linuxCpuArgs(
  images: GuestImages,
  vm: string,
  command: string,
  memory = "256M",
): string[] {
  return [
    "--vm",
    vm,
    "--memory",
    memory,
    ...imageArgs(images),
    "--append",
    `console=ttyS0 ${batchCmdlineParam(command)}`,
  ];
}

/** Disk service arguments for one disk of `vm`. */
export function diskArgs(vm: string, device: string, image: string, overlay?: string): string[] {
  return [
    "--vm",
    vm,
    "--device",
    device,
    "--image",
    image,
    ...(overlay ? ["--overlay", overlay] : []),
  ];
}

/** A batch run in progress: the console stream and the CPU process. */
export interface GuestRun {
  readonly console: ConsoleCapture;
  readonly cpu: ServiceProcess;
  /** Resolves once the console output contains `text`. */
  waitFor(text: string): Promise<void>;
  /** Resolves when the CPU exits, with the batch result (null: the command did not finish). */
  readonly done: Promise<{ code: number; batch: BatchOutput | null; log: string }>;
}

/**
 * Starts the console service and the CPU service of VM `vm` in batch mode running `command`
 * (the disk services `disks` must already serve on the bus at `natsUrl`).
 */
export async function startGuest(
  images: GuestImages,
  natsUrl: string,
  vm: string,
  disks: string[],
  command: string,
): Promise<GuestRun> {
  const bus: Bus = await connect({ url: natsUrl, name: `test-guest.${vm}`, log: () => {} });
  const capture = new ConsoleCapture(bus, vm);
  const waiters: { text: string; resolve: () => void }[] = [];
  const poll = setInterval(() => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (capture.text.includes(waiters[i].text)) waiters.splice(i, 1)[0].resolve();
    }
  }, 20);
  let consoleSvc: ServiceProcess | undefined;
  let cpu: ServiceProcess | undefined;
  const cleanup = async () => {
    clearInterval(poll);
    capture.close();
    await cpu?.stop("SIGKILL");
    await consoleSvc?.stop();
    await bus.close().catch(() => {});
  };
  try {
    consoleSvc = await startService("console", ["--vm", vm, "--backend", "log:/dev/null"], natsUrl);
    cpu = await startService("cpu", [
      ...linuxCpuArgs(images, vm, command, "262144K"),
      ...disks.flatMap((d) => ["--disk", d]),
    ], natsUrl);
  } catch (e) {
    await cleanup();
    throw e;
  }
  const theCpu = cpu;
  const done = (async () => {
    let guard: ReturnType<typeof setTimeout> | undefined;
    const code = await Promise.race([
      theCpu.exited,
      new Promise<number>((r) => guard = setTimeout(() => r(-1), HANG_GUARD_MS)),
    ]);
    clearTimeout(guard);
    // Let the last console bytes arrive before reading the result.
    await new Promise((r) => setTimeout(r, 200));
    const text = capture.text;
    await cleanup();
    return { code, batch: parseBatchOutput(text), log: text.slice(-4000) };
  })();
  return {
    console: capture,
    cpu: theCpu,
    waitFor: (text) =>
      capture.text.includes(text)
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ text, resolve })),
    done,
  };
}

/** Runs `command` in VM `vm` to the end; returns its batch output (throws if it did not finish). */
export async function runGuest(
  images: GuestImages,
  natsUrl: string,
  vm: string,
  disks: string[],
  command: string,
): Promise<BatchOutput> {
  const run = await startGuest(images, natsUrl, vm, disks, command);
  const r = await run.done;
  if (!r.batch) {
    throw new Error(`${vm}: the command did not finish (cpu exit ${r.code}); console:\n${r.log}`);
  }
  return r.batch;
}

/** sha256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const data = await Deno.readFile(path);
  const d = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** One endpoint's counters from `$SRV.STATS`. */
export interface EndpointCounts {
  requests: number;
  errors: number;
}

/**
 * Request counters of endpoint `endpoint` of the one `service` instance serving on the bus
 * at `natsUrl` (from `$SRV.STATS.<service>`).
 */
export async function endpointCounts(
  natsUrl: string,
  service: string,
  endpoint: string,
): Promise<EndpointCounts> {
  const bus = await connect({ url: natsUrl, name: "test-stats", log: () => {} });
  try {
    const m = await bus.nc.request(`$SRV.STATS.${service}`, new Uint8Array(), { timeout: 10_000 });
    const stats = m.json<
      { endpoints: { name: string; num_requests: number; num_errors: number }[] }
    >();
    const e = stats.endpoints.find((x) => x.name === endpoint);
    if (!e) throw new Error(`${service} has no endpoint ${endpoint}`);
    return { requests: e.num_requests, errors: e.num_errors };
  } finally {
    await bus.close();
  }
}
