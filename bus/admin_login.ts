/**
 * The admin login of a launcher's private nats-server, for tools: a 0600 file of
 * `NATS_URL`, `VMESH_NATS_USER` and `VMESH_NATS_PASSWORD` lines that a shell loads with
 * `set -a; . FILE` and `connect()` then reads (QEMU and docker likewise leave a socket or
 * config in their run dir rather than printing a secret).
 *
 * @module
 */
import { PASSWORD_ENV, USER_ENV } from "./credentials.ts";
import { CA_ENV } from "./tls.ts";
import type { EmbeddedNats } from "./nats_server.ts";

/**
 * Writes the admin login of `nats` (started with credentials) to `path` (created 0600);
 * returns `path`.
 *
 * ```ts
 * const nats = await startEmbeddedNats({ credentials: new BusCredentials() });
 * await writeAdminLogin(`${runDir}/bus.env`, nats);
 * ```
 */
export async function writeAdminLogin(path: string, nats: EmbeddedNats): Promise<string> {
  const admin = nats.credentials?.users.get("admin");
  if (!admin) throw new Error("this nats-server admits anyone: it has no admin login to write");
  let text = `NATS_URL=${nats.url}\n${USER_ENV}=${admin.user}\n${PASSWORD_ENV}=${admin.password}\n`;
  if (nats.tls?.ca) text += `${CA_ENV}=${nats.tls.ca}\n`;
  // createNew: never write the secret into a file someone else made (and may read).
  await Deno.writeTextFile(path, text, { mode: 0o600, createNew: true });
  return path;
}

/** Reads a login file written by {@link writeAdminLogin} as environment variables. */
export async function readLogin(path: string): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}
