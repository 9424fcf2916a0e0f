/**
 * Who may talk to whom on the bus: one user per service role, each with publish/subscribe
 * permissions derived from the subject scheme (subjects.ts), written as a nats-server
 * `authorization` block. Replies go to a per-user inbox prefix (`_INBOX.<user>.>`), so no
 * user can read another's replies; servers answer requests through `allow_responses`.
 *
 * @module
 */

import {
  consoleSubject,
  devicePrefix,
  MEMORY_PREFIX,
  netPortPrefix,
  netPortSubject,
  switchPrefix,
  vmControlPrefix,
} from "./subjects.ts";

/** A service role on the bus. */
export type BusRole =
  | { kind: "admin" }
  | { kind: "launcher"; vm: string }
  | { kind: "console"; vm: string }
  | { kind: "disk"; vm: string; device: string }
  | { kind: "switch"; switch: string }
  /** A net service running several switches: the union of their switch roles. */
  | { kind: "net"; switches: string[] }
  /** The memory (page store) service: its ops, and JetStream for its object store. */
  | { kind: "memory" }
  | { kind: "cpu"; vm: string; disks: string[]; ports: { switch: string; port: string }[] }
  /** The control service (services/control): its ops, the hosts' agents, its JetStream state. */
  | { kind: "control" }
  /**
   * A host agent (services/agent): its own host's subjects, plus those of the VMs it starts,
   * which connect with its login (any VM name: per-VM logins would need minting).
   */
  | { kind: "agent"; host: string };

/** Publish/subscribe allow-lists of one user. */
export interface Permissions {
  publish: string[];
  subscribe: string[];
  /** May answer requests it received (publish to their reply subjects). */
  allowResponses: boolean;
}

/** One user: name, password and its permissions. */
export interface BusUser {
  user: string;
  password: string;
  role: BusRole;
  permissions: Permissions;
}

/** Env var naming the user a service connects as. */
export const USER_ENV = "VMESH_NATS_USER";
/** Env var with the user's password (never put on argv). */
export const PASSWORD_ENV = "VMESH_NATS_PASSWORD";

/** The inbox prefix of a user: replies to its requests arrive under it. */
export function inboxPrefix(user: string): string {
  return `_INBOX.${user}`;
}

/** `$SRV` discovery subjects a service named `name` listens on. */
function discovery(name: string): string[] {
  return ["$SRV.*", `$SRV.*.${name}`, `$SRV.*.${name}.*`];
}

/** The user name of a role (a subject token, so it can prefix an inbox). */
export function roleUser(role: BusRole): string {
  switch (role.kind) {
    case "admin":
      return "admin";
    case "launcher":
      return `launcher-${role.vm}`;
    case "console":
      return `console-${role.vm}`;
    case "disk":
      return `disk-${role.vm}-${role.device}`;
    case "switch":
      return `switch-${role.switch}`;
    case "net":
      return `net-${role.switches.join("-")}`;
    case "memory":
      return "memory";
    case "cpu":
      return `cpu-${role.vm}`;
    case "control":
      return "control";
    case "agent":
      return `agent-${role.host}`;
  }
}

/** Disk devices an agent's VMs may have (NATS wildcards match whole tokens only). */
const AGENT_DISKS = ["disk0", "disk1", "disk2", "disk3", "disk4", "disk5", "disk6", "disk7"];

/** Snapshot ops of the memory service a CPU service uses (listing/deleting left to tools). */
const CPU_MEMORY_OPS = ["put_page", "get_page", "has_pages", "put_manifest", "get_manifest"];

/** The permissions of a role, from the subject scheme. */
export function rolePermissions(role: BusRole): Permissions {
  const inbox = `${inboxPrefix(roleUser(role))}.>`;
  switch (role.kind) {
    case "admin":
      return { publish: [">"], subscribe: [">"], allowResponses: true };
    case "launcher":
      // Waits for its VM's services, watches its console, asks its VM to stop.
      return {
        publish: ["$SRV.PING", "$SRV.PING.*", `${vmControlPrefix(role.vm)}.*`],
        subscribe: [consoleSubject(role.vm, "out"), inbox],
        allowResponses: false,
      };
    case "console":
      return {
        // Ctrl-A x in the terminal asks the VM to stop.
        publish: [consoleSubject(role.vm, "in"), `${vmControlPrefix(role.vm)}.stop`],
        subscribe: [
          consoleSubject(role.vm, "out"),
          `${devicePrefix(role.vm, "console")}.*`,
          ...discovery("vmesh-console"),
          inbox,
        ],
        allowResponses: true,
      };
    case "disk":
      return {
        publish: [],
        subscribe: [`${devicePrefix(role.vm, role.device)}.*`, ...discovery("vmesh-disk"), inbox],
        allowResponses: true,
      };
    case "switch":
      return {
        // Every port of its switch (a wildcard: netPortSubject takes one port's token only).
        publish: [`${switchPrefix(role.switch)}.port.*.rx`],
        subscribe: [
          `${switchPrefix(role.switch)}.*`,
          `${switchPrefix(role.switch)}.port.*.tx`,
          `${switchPrefix(role.switch)}.port.*.join`,
          `${switchPrefix(role.switch)}.port.*.leave`,
          ...discovery("vmesh-net"),
          inbox,
        ],
        allowResponses: true,
      };
    case "net": {
      const each = role.switches.map((sw) => rolePermissions({ kind: "switch", switch: sw }));
      return {
        publish: [...new Set(each.flatMap((p) => p.publish))],
        subscribe: [
          ...new Set(each.flatMap((p) => p.subscribe.filter((s) => !s.startsWith("_INBOX.")))),
          inbox,
        ],
        allowResponses: true,
      };
    }
    case "memory":
      return {
        // JetStream API, acks and flow control, and the object store's own subjects.
        publish: ["$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$O.>"],
        subscribe: [`${MEMORY_PREFIX}.*`, ...discovery("vmesh-memory"), inbox],
        allowResponses: true,
      };
    case "cpu":
      return {
        publish: [
          consoleSubject(role.vm, "out"),
          // Its --http /vm API goes through its own control ops.
          `${vmControlPrefix(role.vm)}.*`,
          // Live migration: the source drives the incoming CPU service of the same VM.
          `${devicePrefix(role.vm, "incoming")}.*`,
          // Snapshots: its pages and manifests in the memory service (listing and deleting
          // every VM's snapshots is left to tools).
          ...["put_page", "get_page", "has_pages", "put_manifest", "get_manifest"].map((op) =>
            `${MEMORY_PREFIX}.${op}`
          ),
          ...role.disks.map((d) => `${devicePrefix(role.vm, d)}.*`),
          // Its own ports only: the join/leave subject names the port (the switch checks it).
          ...role.ports.flatMap((p) => [
            `${netPortPrefix(p.switch, p.port)}.join`,
            `${netPortPrefix(p.switch, p.port)}.leave`,
            netPortSubject(p.switch, p.port, "tx"),
          ]),
        ],
        subscribe: [
          consoleSubject(role.vm, "in"),
          `${vmControlPrefix(role.vm)}.*`,
          `${devicePrefix(role.vm, "incoming")}.*`,
          ...role.ports.map((p) => netPortSubject(p.switch, p.port, "rx")),
          ...discovery("vmesh-cpu"),
          inbox,
        ],
        allowResponses: true,
      };
    case "control":
      return {
        publish: [
          // Its agents' ops (not their load announcements: it must not speak for a host).
          ...["start", "incoming", "stop", "rm", "logs", "layers"].map((op) =>
            `vmesh.host.*.${op}`
          ),
          // The KV bucket vmesh-control and the events stream, through the JetStream API.
          "$JS.API.>",
          "$JS.ACK.>",
          "$JS.FC.>",
          "$KV.vmesh-control.>",
          "vmesh.control.events.>",
          // Rebalancing: a VM's CPU service asked to live-migrate.
          "vmesh.*.ctl.migrate",
          // Its snapshot op: a VM's CPU service asked to store a snapshot.
          "vmesh.*.ctl.snapshot",
          // A snapshot's shape (create --from-snapshot) and a VM's last snapshot (recreation).
          `${MEMORY_PREFIX}.get_manifest`,
          `${MEMORY_PREFIX}.list_manifests`,
        ],
        subscribe: ["vmesh.control.*", "vmesh.host.*.load", ...discovery("vmesh-control"), inbox],
        allowResponses: true,
      };
    case "agent": {
      const host = `vmesh.host.${role.host}`;
      // Its VMs' services (console, disks, CPU; a live migration's incoming CPU) with the VM
      // name as a wildcard.
      const vmDevices = ["console", "ctl", "incoming", ...AGENT_DISKS].map((d) => `vmesh.*.${d}.*`);
      return {
        publish: [
          `${host}.load`,
          ...vmDevices,
          ...CPU_MEMORY_OPS.map((op) => `${MEMORY_PREFIX}.${op}`),
        ],
        subscribe: [
          `${host}.*`,
          ...vmDevices,
          ...["vmesh-agent", "vmesh-console", "vmesh-disk", "vmesh-cpu"].flatMap(discovery),
          inbox,
        ],
        allowResponses: true,
      };
    }
  }
}

/** A random password (32 hex digits). */
function randomPassword(): string {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/** The users of one bus: a fresh random password per role. */
export class BusCredentials {
  readonly users: Map<string, BusUser> = new Map();

  /** Adds (or returns the existing) user of `role`. */
  add(role: BusRole): BusUser {
    const user = roleUser(role);
    let u = this.users.get(user);
    if (!u) {
      u = { user, password: randomPassword(), role, permissions: rolePermissions(role) };
      this.users.set(user, u);
    }
    return u;
  }

  /** The environment a child process of `role` connects with. */
  env(role: BusRole): Record<string, string> {
    const u = this.add(role);
    return { [USER_ENV]: u.user, [PASSWORD_ENV]: u.password };
  }

  /** The nats-server `authorization` block (JSON is valid nats-server config syntax). */
  serverConfig(): string {
    return authorizationConfig(
      [...this.users.values()].map((u) => ({ ...u, password: { literal: u.password } })),
    );
  }
}

/** A user of {@link authorizationConfig}: its password, or the env var nats-server reads it from. */
export interface ConfigUser {
  user: string;
  password: { literal: string } | { env: string };
  permissions: Permissions;
}

/**
 * A nats-server `authorization` block. A password given as `{ env: NAME }` is written as the
 * config variable `$NAME`, which nats-server takes from its environment at start (and refuses
 * to start without): a config with no secrets in it, as compose.yaml's nats service uses.
 *
 * ```ts
 * authorizationConfig([{ user: "memory", password: { env: "VMESH_PW_MEMORY" },
 *   permissions: rolePermissions({ kind: "memory" }) }]);
 * ```
 */
export function authorizationConfig(users: ConfigUser[]): string {
  const vars = new Map<string, string>();
  const entries = users.map((u) => {
    let password: string;
    if ("env" in u.password) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(u.password.env)) {
        throw new TypeError(`${u.user}: bad password variable ${u.password.env}`);
      }
      // A unique placeholder, replaced by the bare variable reference below.
      password = `\u0000${vars.size}\u0000`;
      vars.set(JSON.stringify(password), `$${u.password.env}`);
    } else password = u.password.literal;
    return {
      user: u.user,
      password,
      permissions: {
        publish: { allow: u.permissions.publish.length ? u.permissions.publish : ["_NONE_"] },
        subscribe: { allow: u.permissions.subscribe },
        ...(u.permissions.allowResponses ? { allow_responses: true } : {}),
      },
    };
  });
  let text = JSON.stringify({ users: entries }, null, 2);
  for (const [quoted, ref] of vars) text = text.replace(quoted, ref);
  return `authorization ${text}\n`;
}

/** The credentials a process connects with, from {@link USER_ENV} / {@link PASSWORD_ENV}. */
export function credentialsFromEnv(): { user: string; pass: string } | undefined {
  const user = Deno.env.get(USER_ENV);
  if (!user) return undefined;
  return { user, pass: Deno.env.get(PASSWORD_ENV) ?? "" };
}
