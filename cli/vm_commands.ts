/**
 * The control plane's VM commands, in the habits of docker and virsh: `./vmesh create`,
 * `ls`, `inspect`, `start`, `stop`, `rm`, `logs`, `hosts`. They call the control service's
 * bus ops (proto/control.proto) on `$NATS_URL`.
 * @module
 */

import { parseArgs } from "node:util";
import { BusError, connect, control } from "@vmesh/bus";
import { stateLabel } from "../services/control/records.ts";
import { diskImageMib } from "../services/agent/disk_size.ts";
import { UP_LOGIN, useUpLogin } from "./up_login.ts";

const HELP: Record<string, string> = {
  create: `Usage: ./vmesh create [options] NAME

Creates VM NAME: the control service places it on the least-loaded host that fits its
quota and that host's agent starts it. Prints the VM's name and host.
  --harts N, --cpus N        harts (vCPUs) (default 1)
  -m, --memory SIZE          guest RAM: MiB, or with a K/M/G suffix (default 256M)
  --disk-size SIZE           disk space reserved on the host (default: the data disk's size,
                             the most its overlay can grow to; the agent refuses less)
  --cpu-shares N             CPU weight when the host is busy (default 1024 per hart); the
                             host caps each VM at its harts' worth of CPU either way
  --image linux              the Linux guest of ./vmesh guest (OpenSBI, kernel, initramfs,
                             data disk; built once into .vmesh/guest if missing)
  --from-snapshot SNAP       restore snapshot SNAP (./vmesh snapshots): the guest carries on
                             from it, with its harts and RAM (--harts/--memory may only
                             repeat them); its disks are copies of the snapshot's points
  --kernel PATH              kernel: a bare-metal ELF (with --bios none) or a Linux Image
  --bios PATH|none           firmware, e.g. OpenSBI fw_jump.bin (default none)
  --initrd PATH              initial ramdisk
  --append ARGS              kernel command line
  --disk IMAGE               data disk image (copy-on-write overlay on the host)
  -l, --label KEY=VALUE      a label (repeatable)
  --anti-affinity KEY        never on a host running a VM with the same value of label KEY
                             (repeatable)
  -o, --output json          print the VM record as JSON
Paths are read on the host the VM lands on (--image linux: this machine's guest cache,
which is at the same path on every host running this checkout).`,
  ls: `Usage: ./vmesh ls [options]

Lists every VM the control service records (any state).
  -l, --label KEY=VALUE      only VMs with this label (repeatable)
  -q, --quiet                names only
  -o, --output json          the records as JSON`,
  inspect: `Usage: ./vmesh inspect NAME...

Prints the records of VMs as JSON.`,
  start: `Usage: ./vmesh start NAME...

Starts stopped, exited, failed or lost VMs: on their host when it still fits, else placed
anew.
  -o, --output json          print the records as JSON`,
  stop: `Usage: ./vmesh stop NAME...

Stops VMs (their records stay; ./vmesh start runs them again).
  -o, --output json          print the records as JSON`,
  rm: `Usage: ./vmesh rm [-f] NAME...

Removes VMs and their files on their host.
  -f, --force                stop a running VM first instead of refusing
  -o, --output json          print the removed records as JSON`,
  logs: `Usage: ./vmesh logs NAME

Prints VM NAME's console output so far (from its host's agent).`,
  events: `Usage: ./vmesh events [options] [NAME]

Prints the control plane's last events (of VM NAME when given), oldest first: created,
placed, running, refused, failed, stopped, exited, lost, removed, orphan-stopped,
recreating / recreated (from a snapshot, after a lost host), migrating / migrated /
migrate-failed (rebalancing), and the hosts' host-lost / host-up (NAME _hosts).
  -n, --tail N               at most the last N (default 100)
  -o, --output json          as JSON`,
  hosts: `Usage: ./vmesh hosts [options]

Lists the hosts whose agents announce themselves, with capacity, reservations and load.
  -o, --output json          as JSON`,
};

export { SUMMARIES } from "./vm_command_summaries.ts";

class UsageError extends Error {}

const MIB = 1024 * 1024;

/** Reads a size flag (MiB, or with a K/M/G/T suffix) as MiB. */
export function parseMib(flag: string, v: string): number {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(v.trim());
  if (!m) throw new UsageError(`--${flag} must be a size such as 512M or 2G, got '${v}'`);
  const unit = { "": MIB, K: 1024, M: MIB, G: 1024 * MIB, T: 1024 * 1024 * MIB }[
    m[2].toUpperCase() as "" | "K" | "M" | "G" | "T"
  ];
  const mib = Math.ceil(Number(m[1]) * unit / MIB);
  if (!Number.isSafeInteger(mib) || mib > 0xffffffff) throw new UsageError(`--${flag} too large`);
  return mib;
}

function labelsOf(list: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list ?? []) {
    const i = l.indexOf("=");
    if (i <= 0) throw new UsageError(`--label needs KEY=VALUE, got '${l}'`);
    out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

const fmtLabels = (l: Record<string, string>) =>
  Object.entries(l).map(([k, v]) => `${k}=${v}`).join(",") || "-";

/** Left-aligned columns, as docker ps prints them. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return [head, ...rows].map((r) => r.map((c, i) => c.padEnd(w[i])).join("   ").trimEnd())
    .join("\n");
}

function age(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

/** A VM record as JSON for scripts: the state as its name. */
function vmJson(v: control.VmInfo): Record<string, unknown> {
  return { ...v, state: stateLabel(v.state) };
}

/** The guest-visible size of a data disk image in MiB (0: none), for the default --disk-size. */
async function imageMib(path: string | undefined): Promise<number> {
  if (!path) return 0;
  try {
    return await diskImageMib(path);
  } catch (e) {
    throw new UsageError(`--disk ${path}: ${(e as Error).message} (or give --disk-size)`);
  }
}

/** Runs `./vmesh <cmd> args`; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  if (!HELP[cmd]) {
    console.error(`vmesh: no VM command ${cmd}`);
    return 2;
  }
  let flags;
  let names: string[];
  try {
    ({ values: flags, positionals: names } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        harts: { type: "string" },
        cpus: { type: "string" },
        memory: { type: "string", short: "m" },
        "disk-size": { type: "string" },
        "cpu-shares": { type: "string" },
        kernel: { type: "string" },
        image: { type: "string" },
        "from-snapshot": { type: "string" },
        bios: { type: "string" },
        initrd: { type: "string" },
        append: { type: "string" },
        disk: { type: "string" },
        label: { type: "string", short: "l", multiple: true },
        "anti-affinity": { type: "string", multiple: true },
        output: { type: "string", short: "o" },
        quiet: { type: "boolean", short: "q" },
        force: { type: "boolean", short: "f" },
        tail: { type: "string", short: "n" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`vmesh ${cmd}: ${(e as Error).message}\n${HELP[cmd]}`);
    return 2;
  }
  if (flags.help) {
    console.log(HELP[cmd]);
    return 0;
  }
  const json = flags.output === "json";
  if (flags.output !== undefined && !json) {
    console.error(`vmesh ${cmd}: --output takes json, got '${flags.output}'`);
    return 2;
  }
  // Beside a running ./vmesh up, its bus (and admin login) is the default.
  const fromUp = await useUpLogin();
  const natsUrl = Deno.env.get("NATS_URL");
  if (!natsUrl) {
    console.error(
      `vmesh ${cmd}: NATS_URL is not set and no ./vmesh up runs here: start ./vmesh up, or ` +
        `point NATS_URL at the bus of the control service (./vmesh control and ./vmesh agent)`,
    );
    return 2;
  }
  let bus;
  try {
    bus = await connect({ url: natsUrl, name: `vmesh-cli-${cmd}`, log: () => {} });
  } catch (e) {
    console.error(
      `vmesh ${cmd}: cannot reach NATS at ${natsUrl}: ${(e as Error).message}` +
        (fromUp ? ` (from ${UP_LOGIN}: if that ./vmesh up is gone, remove the file)` : ""),
    );
    return 1;
  }
  const ctl = bus.client({ prefix: control.CONTROL_PREFIX }, control.ops, {
    timeoutMs: 200_000,
    retries: 0,
  });
  const out = (s: string) => console.log(s);
  try {
    switch (cmd) {
      case "create": {
        if (names.length !== 1) throw new UsageError("create takes one NAME");
        let boot: control.BootSpec;
        const snap = flags["from-snapshot"];
        if (snap !== undefined) {
          if (flags.image || flags.kernel || flags.initrd || flags.disk || flags.bios) {
            throw new UsageError("--from-snapshot restores its own firmware, kernel and disks");
          }
          boot = { bios: "", kernel: "", snapshot: snap };
        } else if (flags.image !== undefined) {
          if (flags.image !== "linux") {
            throw new UsageError(`--image takes linux, got '${flags.image}'`);
          }
          if (flags.kernel || flags.initrd || flags.disk || flags.bios) {
            throw new UsageError("--image linux sets --bios, --kernel, --initrd and --disk");
          }
          // Loaded here only: the other commands need none of the guest build.
          const { ensureGuestImages } = await import("../guest/mod.ts");
          const g = await ensureGuestImages();
          boot = {
            bios: g.firmware,
            kernel: g.kernel,
            initrd: g.initramfs,
            append: flags.append ?? "console=ttyS0",
            disk: g.disk,
          };
        } else if (!flags.kernel) {
          throw new UsageError("--kernel PATH or --image linux is required");
        } else {
          boot = {
            bios: flags.bios ?? "none",
            kernel: flags.kernel,
            initrd: flags.initrd ?? "",
            append: flags.append ?? "",
            disk: flags.disk ?? "",
          };
        }
        // From a snapshot, 0 means "the snapshot's" (the control service fills them in).
        const harts = Number(flags.harts ?? flags.cpus ?? (snap ? "0" : "1"));
        if (!Number.isInteger(harts) || harts < (snap ? 0 : 1)) {
          throw new UsageError("--harts must be >= 1");
        }
        const cpuShares = Number(flags["cpu-shares"] ?? "0");
        if (!Number.isInteger(cpuShares) || cpuShares < 0 || cpuShares > 262144) {
          throw new UsageError("--cpu-shares must be 2..262144");
        }
        const vm = await ctl.call("create", {
          name: names[0],
          quota: {
            harts,
            ramMib: flags.memory || !snap ? parseMib("memory", flags.memory ?? "256M") : 0,
            diskMib: flags["disk-size"]
              ? parseMib("disk-size", flags["disk-size"])
              : await imageMib(boot.disk),
            cpuShares,
          },
          boot,
          labels: labelsOf(flags.label),
          antiAffinity: flags["anti-affinity"] ?? [],
        });
        out(json ? JSON.stringify(vmJson(vm), null, 2) : `${vm.name} ${vm.host}`);
        break;
      }
      case "ls": {
        const { vms } = await ctl.call("list", { labels: labelsOf(flags.label) });
        if (json) out(JSON.stringify(vms.map(vmJson), null, 2));
        else if (flags.quiet) vms.forEach((v) => out(v.name));
        else {
          out(table(
            ["NAME", "STATE", "HOST", "HARTS", "MEMORY", "DISK", "LABELS", "CREATED"],
            vms.map((v) => [
              v.name,
              stateLabel(v.state),
              v.host || "-",
              String(v.quota.harts),
              `${v.quota.ramMib}M`,
              `${v.quota.diskMib}M`,
              fmtLabels(v.labels),
              `${age(v.createdMs)} ago`,
            ]),
          ));
        }
        break;
      }
      case "hosts": {
        const { hosts } = await ctl.call("hosts", {});
        if (json) out(JSON.stringify(hosts, null, 2));
        else {
          out(table(
            [
              "HOST",
              "STATE",
              "CORES",
              "RESERVED-HARTS",
              "RAM",
              "RESERVED-RAM",
              "CPU",
              "VMS",
              "LABELS",
            ],
            hosts.map((h) => [
              h.host,
              h.up ? "up" : "lost",
              String(h.cores),
              String(h.reserved.harts),
              `${h.ramMib}M`,
              `${h.reserved.ramMib}M`,
              `${Math.round(h.cpuUse * 100)}%`,
              String(h.vms),
              fmtLabels(h.labels),
            ]),
          ));
        }
        break;
      }
      case "events": {
        if (names.length > 1) throw new UsageError("events takes at most one NAME");
        const max = Number(flags.tail ?? "100");
        if (!Number.isInteger(max) || max < 1) throw new UsageError("--tail must be >= 1");
        const { events } = await ctl.call("events", { vm: names[0] ?? "", max });
        if (json) out(JSON.stringify(events, null, 2));
        else {
          out(table(
            ["TIME", "VM", "EVENT", "HOST", "DETAIL"],
            events.map((e) => [
              new Date(e.atMs).toISOString(),
              e.vm,
              e.type,
              e.host || "-",
              e.detail,
            ]),
          ));
        }
        break;
      }
      case "logs": {
        if (names.length !== 1) throw new UsageError("logs takes one NAME");
        const { text } = await ctl.call("logs", { name: names[0] });
        await Deno.stdout.write(new TextEncoder().encode(text));
        break;
      }
      default: {
        if (names.length === 0) throw new UsageError(`${cmd} needs at least one NAME`);
        const op = cmd as "inspect" | "start" | "stop" | "rm";
        const got: control.VmInfo[] = [];
        let failed = 0;
        for (const name of names) {
          try {
            got.push(await ctl.call(op, { name, force: flags.force ?? false }));
            if (!json && op !== "inspect") out(name);
          } catch (e) {
            if (!(e instanceof BusError)) throw e;
            console.error(`vmesh ${cmd}: ${e.message}`);
            failed++;
          }
        }
        if (json || op === "inspect") out(JSON.stringify(got.map(vmJson), null, 2));
        if (failed) return 1;
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`vmesh ${cmd}: ${e.message}\n${HELP[cmd]}`);
      return 2;
    }
    if (e instanceof BusError) {
      const hint = e.status === "UNAVAILABLE"
        ? " (is the control service running? ./vmesh control)"
        : "";
      console.error(`vmesh ${cmd}: ${e.message}${hint}`);
      return 1;
    }
    throw e;
  } finally {
    await bus.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
