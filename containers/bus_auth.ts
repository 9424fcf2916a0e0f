/**
 * compose.yaml's bus logins: one nats-server user per compose service, with the permissions of
 * its role (bus/credentials.ts, role read from the service's Dockerfile and command as
 * `./vmesh up` does), plus `admin` for tools. The committed `containers/nats/vmesh.conf` holds
 * the users and permissions but no secret: each password is a config variable
 * (`$VMESH_PW_DISK`, ...) that the nats container gets from compose, which reads it from the
 * `.env` file beside compose.yaml. This program writes that `.env` (0600) with fresh random
 * passwords; compose refuses to start without them.
 *
 *   deno run -A containers/bus_auth.ts            # adds the missing VMESH_PW_* lines to .env
 *   deno run -A containers/bus_auth.ts --config   # rewrites containers/nats/vmesh.conf
 *
 * @module
 */

import {
  authorizationConfig,
  type BusRole,
  type ConfigUser,
  rolePermissions,
  roleUser,
} from "@vmesh/bus";
import { type ComposeService, localKind, parseCompose } from "../cli/up.ts";
import { serviceRole } from "../cli/service_role.ts";

const ROOT = new URL("../", import.meta.url).pathname;
/** The nats-server config compose.yaml's nats service runs with (relative to the repo root). */
export const COMPOSE_NATS_CONFIG = "containers/nats/vmesh.conf";
/** The file compose reads its variables from (relative to the repo root). */
export const COMPOSE_ENV_FILE = ".env";

/** One compose service's login: its bus user and the variable holding its password. */
export interface ComposeLogin {
  /** The compose service (or "admin", the login for tools). */
  service: string;
  role: BusRole;
  user: string;
  /** `VMESH_PW_<SERVICE>`. */
  passwordVar: string;
}

/** `VMESH_PW_<SERVICE>`: the variable with the password of a compose service's login. */
export function passwordVar(service: string): string {
  return `VMESH_PW_${service.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/** The logins of every service built from `services/<x>/Dockerfile`, then `admin`. */
export function composeLogins(services: Map<string, ComposeService>): ComposeLogin[] {
  const out: ComposeLogin[] = [];
  for (const [name, s] of services) {
    const kind = localKind(s);
    const built = kind.kind === "deno" ? /^services\/([^/]+)\/main\.ts$/.exec(kind.entry) : null;
    const role = built ? serviceRole(built[1], s.command, s.environment) : undefined;
    if (role) {
      out.push({ service: name, role, user: roleUser(role), passwordVar: passwordVar(name) });
    }
  }
  const admin: BusRole = { kind: "admin" };
  out.push({ service: "admin", role: admin, user: "admin", passwordVar: passwordVar("admin") });
  return out;
}

/** The text of {@link COMPOSE_NATS_CONFIG} for `logins`. */
export function composeNatsConfig(logins: ComposeLogin[]): string {
  const users: ConfigUser[] = logins.map((l) => ({
    user: l.user,
    password: { env: l.passwordVar },
    permissions: rolePermissions(l.role),
  }));
  return `# Made by containers/bus_auth.ts from compose.yaml (--config rewrites it): one user per
# service, allowed only its role's subjects (bus/credentials.ts). The passwords are variables
# nats-server takes from its environment; compose sets them from .env (bus_auth.ts writes it).
${authorizationConfig(users)}`;
}

/**
 * A fresh random password for each login's variable: `pw` and 32 hex digits. nats-server parses
 * a variable's value as a config value, so it must start with a letter (`8e3f...` would be
 * read as a number and stop the server).
 */
export function composeSecrets(logins: ComposeLogin[]): Record<string, string> {
  const hex = () =>
    "pw" +
    [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0"))
      .join("");
  return Object.fromEntries(logins.map((l) => [l.passwordVar, hex()]));
}

/**
 * Adds a password line to the env file at `path` for each login that has none (creating it
 * 0600); existing lines, other settings included, stay. Returns the variables added.
 */
export async function writeComposeSecrets(path: string, logins: ComposeLogin[]): Promise<string[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const have = new Set(text.split("\n").map((l) => l.split("=")[0].trim()));
  const secrets = composeSecrets(logins.filter((l) => !have.has(l.passwordVar)));
  const added = Object.keys(secrets);
  if (added.length === 0) return [];
  const lines = added.map((k) => `${k}=${secrets[k]}`).join("\n");
  const sep = text && !text.endsWith("\n") ? "\n" : "";
  await Deno.writeTextFile(path, `${text}${sep}${lines}\n`, { mode: 0o600 });
  // mode applies only to a new file: an existing one is narrowed too, it now holds secrets.
  await Deno.chmod(path, 0o600);
  return added;
}

async function main(args: string[]): Promise<number> {
  const logins = composeLogins(parseCompose(await Deno.readTextFile(`${ROOT}compose.yaml`)));
  if (args.includes("--help") || args.includes("-h")) {
    console.log("usage: deno run -A containers/bus_auth.ts [--config]");
    return 0;
  }
  if (args.includes("--config")) {
    await Deno.writeTextFile(`${ROOT}${COMPOSE_NATS_CONFIG}`, composeNatsConfig(logins));
    console.log(`wrote ${COMPOSE_NATS_CONFIG}: ${logins.map((l) => l.user).join(", ")}`);
    return 0;
  }
  const path = `${ROOT}${COMPOSE_ENV_FILE}`;
  const added = await writeComposeSecrets(path, logins);
  console.log(
    added.length
      ? `${path}: added ${added.join(", ")} (0600); compose reads it from beside compose.yaml`
      : `${path}: every login already has its password`,
  );
  console.log(
    `tools on the host: NATS_URL=nats://127.0.0.1:4222 VMESH_NATS_USER=admin ` +
      `VMESH_NATS_PASSWORD=<${passwordVar("admin")} from ${COMPOSE_ENV_FILE}>`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
