/**
 * `./vmesh clone SNAP --count N --control`: the clones made by the control service
 * (`vmesh.control.clone`), each placed on a host by capacity and started by that host's agent,
 * all or none; prints each clone's name and host (as `./vmesh create` prints one).
 * @module
 */
import { BusError, connect, control } from "@vmesh/bus";
import { stateLabel } from "../services/control/records.ts";
import { UP_LOGIN, useUpLogin } from "./up_login.ts";

/** What to ask the control service for. */
export interface PlacedClones {
  snapshot: string;
  count: number;
  prefix?: string;
  labels: Record<string, string>;
  antiAffinity: string[];
  json: boolean;
}

const say = (l: string) => console.error(`vmesh clone: ${l}`);

/** True when the CLI should go through the control plane without being told: beside `./vmesh up`. */
export async function besideUp(): Promise<boolean> {
  return !Deno.env.get("NATS_URL") &&
    await Deno.stat(UP_LOGIN).then(() => true, () => false);
}

/** Asks the control service for the clones; returns the exit code. */
export async function clonePlaced(o: PlacedClones): Promise<number> {
  const fromUp = await useUpLogin();
  const url = Deno.env.get("NATS_URL");
  if (!url) {
    say("--control needs NATS_URL (the control service's bus) or a running ./vmesh up");
    return 2;
  }
  let bus;
  try {
    bus = await connect({ url, name: "vmesh-cli-clone", log: () => {} });
  } catch (e) {
    say(
      `cannot reach NATS at ${url}: ${(e as Error).message}` +
        (fromUp ? ` (from ${UP_LOGIN})` : ""),
    );
    return 1;
  }
  try {
    const t0 = performance.now();
    const { vms } = await bus.client({ prefix: control.CONTROL_PREFIX }, control.ops, {
      timeoutMs: 600_000,
      retries: 0,
    }).call("clone", {
      snapshot: o.snapshot,
      count: o.count,
      prefix: o.prefix ?? "",
      labels: o.labels,
      antiAffinity: o.antiAffinity,
    });
    if (o.json) {
      console.log(JSON.stringify(vms.map((v) => ({ ...v, state: stateLabel(v.state) })), null, 2));
    } else {
      for (const v of vms) console.log(`${v.name} ${v.host}`);
      say(
        `${vms.length} clone(s) of ${o.snapshot} running after ${
          ((performance.now() - t0) / 1000).toFixed(2)
        } s (./vmesh ls, ./vmesh logs NAME, ./vmesh rm -f NAME)`,
      );
    }
    return 0;
  } catch (e) {
    if (!(e instanceof BusError)) throw e;
    say(
      e.message +
        (e.status === "UNAVAILABLE" ? " (is the control service running? ./vmesh control)" : ""),
    );
    return 1;
  } finally {
    await bus.close();
  }
}
