/**
 * The bus and memory service that `./vmesh snapshot`, `restore` and `snapshots` work with:
 * the bus at NATS_URL (with the login `connect()` reads from the environment, e.g. a loaded
 * `bus.env` of `./vmesh boot`) or, where allowed, a private nats-server; and the memory service
 * already on that bus, or one started here over a directory store (default
 * `.vmesh/snapshots`, so snapshots outlive any one bus).
 * @module
 */
import { type Bus, connect, type EmbeddedNats, startEmbeddedNats } from "@vmesh/bus";
import { ServiceProcess } from "./service_process.ts";

/** Where snapshots are kept when this command starts the memory service. */
export const DEFAULT_SNAPSHOT_STORE: string =
  new URL("../.vmesh/snapshots", import.meta.url).pathname;

/** A usage or setup problem reported as one line. */
export class SnapshotCliError extends Error {}

/** What {@link openSnapshotBus} set up; `close()` stops what it started. */
export interface SnapshotBus {
  bus: Bus;
  url: string;
  /** The memory service's store, as it reported it. */
  store: string;
  /** Whether the bus is a private nats-server started here. */
  private: boolean;
  close(): Promise<void>;
}

/** How to reach the bus and the memory service. */
export interface SnapshotBusOptions {
  /** Command name for messages and the connection name. */
  command: string;
  /** `dir:PATH` or `objects` for a memory service started here (default dir:.vmesh/snapshots). */
  store?: string;
  /** Start a private nats-server when NATS_URL is unset (else: an error saying what to do). */
  privateBus: boolean;
  /** Progress lines. */
  say(line: string): void;
}

/** Answers of `$SRV.PING.<name>` within `ms`. */
export async function ping(
  bus: Bus,
  name: string,
  ms = 400,
): Promise<{ metadata?: Record<string, string> }[]> {
  const out: { metadata?: Record<string, string> }[] = [];
  try {
    const it = await bus.nc.requestMany(`$SRV.PING.${name}`, new Uint8Array(), {
      strategy: "timer",
      maxWait: ms,
    });
    for await (const m of it) {
      try {
        out.push(m.json());
      } catch { /* not a service answer */ }
    }
  } catch (e) {
    if (!/no responders/i.test((e as Error).message)) throw e;
  }
  return out;
}

/** Starts `services/<service>/main.ts` and resolves once it prints its ready line. */
export async function startReady(
  label: string,
  service: string,
  args: string[],
  url: string,
  io: Partial<Pick<ConstructorParameters<typeof ServiceProcess>[0], "stdin" | "stdout">> = {},
): Promise<ServiceProcess> {
  let ready!: () => void;
  const isReady = new Promise<void>((r) => ready = r);
  const p = new ServiceProcess({
    label,
    service,
    args,
    natsUrl: url,
    stdin: io.stdin ?? "null",
    stdout: io.stdout ?? "null",
    onLine: (l) => l.includes(" ready: ") && ready(),
  });
  const code = await Promise.race([isReady.then(() => undefined), p.exited]);
  if (code !== undefined) {
    throw new SnapshotCliError(
      `${label} exited with ${code} before it was ready:\n  ${p.tail.join("\n  ")}`,
    );
  }
  return p;
}

/** Connects (or starts a private bus) and makes sure a memory service answers on it. */
export async function openSnapshotBus(o: SnapshotBusOptions): Promise<SnapshotBus> {
  const given = Deno.env.get("NATS_URL");
  let nats: EmbeddedNats | undefined;
  if (!given) {
    if (!o.privateBus) {
      throw new SnapshotCliError(
        "NATS_URL is not set: point it at the VM's bus (for ./vmesh boot: set -a; . BUS_ENV, " +
          "the admin login file it names)",
      );
    }
    nats = await startEmbeddedNats({ handleSignals: false });
  }
  const url = given ?? nats!.url;
  let bus: Bus;
  try {
    bus = await connect({ url, name: `vmesh-${o.command}`, log: () => {} });
  } catch (e) {
    await nats?.stop();
    throw new SnapshotCliError(`cannot connect to the bus at ${url}: ${(e as Error).message}`);
  }
  let memory: ServiceProcess | undefined;
  let store: string;
  const present = await ping(bus, "vmesh-memory");
  if (present.length && !o.store) {
    store = present[0].metadata?.store ?? "?";
    o.say(`memory service: the one on the bus (store ${store})`);
  } else {
    store = o.store ?? `dir:${DEFAULT_SNAPSHOT_STORE}`;
    if (store !== "objects" && !store.startsWith("dir:")) {
      await bus.close();
      await nats?.stop();
      throw new SnapshotCliError(`--store must be dir:PATH or objects, got '${store}'`);
    }
    try {
      memory = await startReady("vmesh-memory", "memory", ["--store", store], url);
    } catch (e) {
      await bus.close();
      await nats?.stop();
      throw e;
    }
    o.say(`memory service: started over ${store}`);
  }
  return {
    bus,
    url,
    store,
    private: nats !== undefined,
    async close() {
      await memory?.stop();
      await bus.close().catch(() => {});
      await nats?.stop().catch(() => {});
    },
  };
}

/** {@link openSnapshotBus}, a setup problem said in one line (`o.say`) and undefined returned. */
export async function openSnapshotBusOrSay(
  o: SnapshotBusOptions & { fail(line: string): void },
): Promise<
  SnapshotBus | undefined
> {
  try {
    return await openSnapshotBus(o);
  } catch (e) {
    if (!(e instanceof SnapshotCliError)) throw e;
    o.fail(e.message);
    return undefined;
  }
}

/** SIGINT and SIGTERM as the exit codes 130 and 143, until `remove()`. */
export function stopSignals(): { signalled: Promise<number>; remove(): void } {
  let onSignal: (code: number) => void = () => {};
  const signalled = new Promise<number>((r) => onSignal = r);
  const sigint = () => onSignal(130);
  const sigterm = () => onSignal(143);
  Deno.addSignalListener("SIGINT", sigint);
  Deno.addSignalListener("SIGTERM", sigterm);
  return {
    signalled,
    remove() {
      Deno.removeSignalListener("SIGINT", sigint);
      Deno.removeSignalListener("SIGTERM", sigterm);
    },
  };
}

/** What {@link withSnapshotBus} hands its body. */
export interface SnapshotRun {
  sb: SnapshotBus;
  /** Processes the body starts; stopped last-first when it ends. */
  children: ServiceProcess[];
  /** Resolves with 130/143 on SIGINT/SIGTERM. */
  signalled: Promise<number>;
}

/**
 * Runs `body` on a private (or NATS_URL's) bus with a memory service, as `./vmesh restore` and
 * `clone` do: a setup problem or a {@link SnapshotCliError} is one line and exit code 1; the
 * children, signal listeners and bus go whatever happens.
 * @example
 * ```ts
 * const code = await withSnapshotBus(
 *   { command: "restore", say: console.error },
 *   async ({ sb }) => (await ping(sb.bus, "vmesh-memory")).length ? 0 : 1,
 * );
 * ```
 */
export async function withSnapshotBus(
  o: { command: string; store?: string; say(line: string): void },
  body: (run: SnapshotRun) => Promise<number>,
): Promise<number> {
  const sb = await openSnapshotBusOrSay({
    command: o.command,
    store: o.store,
    privateBus: true,
    say: o.say,
    fail: o.say,
  });
  if (!sb) return 1;
  const children: ServiceProcess[] = [];
  const { signalled, remove: removeSignals } = stopSignals();
  try {
    return await body({ sb, children, signalled });
  } catch (e) {
    if (e instanceof SnapshotCliError) {
      o.say(e.message);
      return 1;
    }
    throw e;
  } finally {
    removeSignals();
    for (const c of children.reverse()) await c.stop();
    await sb.close();
  }
}
