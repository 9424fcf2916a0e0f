/**
 * `./vmesh migrate VM --to HOST`: asks VM's CPU service (`vmesh.<vm>.ctl.migrate`) to move
 * itself, live, to the CPU service waiting with `--incoming --host HOST` (started ahead with the
 * VM's flags, on the same bus and device services), and prints rounds, pages, bytes, downtime
 * and total time.
 * @module
 */
import { BusError, checkToken, connect, vm as vmContract } from "@vmesh/bus";
import { parseCommandArgs } from "./command_args.ts";

/** `./vmesh migrate --help`. */
export const MIGRATE_USAGE =
  `usage: ./vmesh migrate VM --to HOST [--max-downtime MS] [--max-rounds N] [--verify] [-o json]

Moves running VM VM's CPU service to host HOST while the guest runs (pre-copy): every
non-zero RAM page is sent, then the pages written meanwhile, round after round, until
what is left fits the downtime; then the guest is paused, the last pages and every
hart and device record are sent, and the guest runs on at the target. The disk,
console and network services stay where they are; only the CPU moves.

The target is a CPU service started ahead on HOST with the VM's own flags plus
--incoming --host HOST (QEMU's -incoming), e.g.
  deno run -A services/cpu/main.ts --vm VM ...the VM's flags... --incoming --host HOST

  --to HOST            the target's host name (required)
  --max-downtime MS    downtime to aim at (default 30)
  --max-rounds N       pre-copy rounds at most, then pause whatever is left (default 30)
  --verify             the target also checks a SHA-256 of the whole RAM (adds to the downtime)
  -o, --output json    print the reply as JSON
  -h, --help           this text

Environment: NATS_URL (and VMESH_NATS_USER/VMESH_NATS_PASSWORD) name the VM's bus.`;

const say = (l: string) => console.error(`vmesh migrate: ${l}`);

/** Runs `./vmesh migrate`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const parsed = parseCommandArgs({
    command: "migrate",
    usage: MIGRATE_USAGE,
    args,
    options: {
      to: { type: "string" },
      "max-downtime": { type: "string" },
      "max-rounds": { type: "string" },
      verify: { type: "boolean", default: false },
      output: { type: "string", short: "o" },
      help: { type: "boolean", short: "h", default: false },
    },
    check({ positionals, values }) {
      if (positionals.length !== 1) throw new Error("give exactly one VM name");
      checkToken("vm", positionals[0]);
      if (values.to === undefined) throw new Error("--to HOST is required");
      checkToken("host", values.to);
      for (const f of ["max-downtime", "max-rounds"] as const) {
        const v = values[f];
        if (v !== undefined && !(Number(v) > 0)) throw new Error(`--${f} must be positive`);
      }
      if (values.output !== undefined && values.output !== "json") {
        throw new Error(`--output takes json, got '${values.output}'`);
      }
    },
  });
  if (typeof parsed === "number") return parsed;
  const { values, positionals } = parsed;
  const vm = positionals[0];
  const url = Deno.env.get("NATS_URL");
  if (!url) {
    say("NATS_URL is not set: point it at the VM's bus");
    return 2;
  }
  let bus;
  try {
    bus = await connect({ url, name: "vmesh-migrate", log: () => {} });
  } catch (e) {
    say(`cannot reach NATS at ${url}: ${(e as Error).message}`);
    return 1;
  }
  try {
    const r = await bus.request({ vm, device: "ctl" }, vmContract.ops.migrate, {
      to: values.to!,
      maxDowntimeMs: Number(values["max-downtime"] ?? 0),
      maxRounds: Number(values["max-rounds"] ?? 0),
      verify: values.verify,
    }, { timeoutMs: 600_000, retries: 0 });
    if (values.output === "json") {
      console.log(JSON.stringify({ ...r, sentBytes: Number(r.sentBytes), vm: undefined }));
      return 0;
    }
    const mib = (b: number) => (b / 1048576).toFixed(1);
    console.log(
      `${vm} moved to ${r.host}: ${r.rounds} rounds (${r.roundPages.join(", ")} pages), ` +
        `${r.sentPages} pages / ${mib(Number(r.sentBytes))} MiB sent, ${r.finalPages} while ` +
        `paused; downtime ${r.downtimeMs.toFixed(1)} ms, took ${(r.totalMs / 1000).toFixed(2)} s`,
    );
    return 0;
  } catch (e) {
    if (e instanceof BusError) {
      say(
        /no service|no responders/i.test(e.message)
          ? `no VM ${vm} answers on vmesh.${vm}.ctl (is it running on this bus?)`
          : e.message,
      );
      return 1;
    }
    throw e;
  } finally {
    await bus.close();
  }
}
