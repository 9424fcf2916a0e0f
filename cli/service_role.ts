/**
 * The bus role of a service process, read from its command line: what `./vmesh up` knows of a
 * compose service (its Dockerfile names the service, its command the VM, device or switches).
 * The inverse of cli/vm_topology.ts, which makes the command line from the role's parts.
 * @module
 */

import type { BusRole } from "@vmesh/bus";
import { parseNic } from "../services/cpu/cli_flags.ts";
import { nicPort } from "./vm_topology.ts";

/** Every value of `--name V` / `--name=V` in `args`. */
function flagValues(args: string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}` && i + 1 < args.length) out.push(args[++i]);
    else if (args[i].startsWith(`--${name}=`)) out.push(args[i].slice(name.length + 3));
  }
  return out;
}

/**
 * The role of `services/<service>/main.ts args` (`env` gives the defaults the services read,
 * e.g. `VMESH_VM`); undefined for a service with no role.
 *
 * ```ts
 * serviceRole("disk", ["--vm", "vm1", "--device", "disk0", "--image", "/x.img"]);
 * // { kind: "disk", vm: "vm1", device: "disk0" }
 * ```
 */
export function serviceRole(
  service: string,
  args: string[],
  env: Record<string, string> = {},
): BusRole | undefined {
  const last = (name: string) => flagValues(args, name).at(-1);
  // The services' own defaults (services/<x>/main.ts).
  const vm = last("vm") ?? env.VMESH_VM ?? "vm1";
  switch (service) {
    case "console":
      return { kind: "console", vm };
    case "disk":
      return { kind: "disk", vm, device: last("device") ?? "disk0" };
    case "net": {
      const switches = [...new Set(flagValues(args, "switch"))];
      return switches.length === 1
        ? { kind: "switch", switch: switches[0] }
        : { kind: "net", switches };
    }
    case "memory":
      return { kind: "memory" };
    case "control":
      return { kind: "control" };
    case "agent":
      // The agent's own default is the machine's hostname (services/agent/main.ts).
      return { kind: "agent", host: last("host") ?? Deno.hostname() };
    case "cpu":
      return {
        kind: "cpu",
        vm,
        disks: flagValues(args, "disk"),
        ports: flagValues(args, "nic").map((n, i) => ({
          switch: parseNic(n).switch,
          port: nicPort(vm, i),
        })),
      };
  }
  return undefined;
}
