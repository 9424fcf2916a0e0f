/**
 * Where `./vmesh up` leaves the admin login of its private nats-server for the commands run
 * beside it (`./vmesh create`, `ls`, ...), as docker's CLI finds its daemon's socket: a 0600
 * copy at `.vmesh/up/bus.env`, removed when that `up` stops.
 * @module
 */
import { readLogin } from "@vmesh/bus";

/** The login file of the running `./vmesh up`. */
export const UP_LOGIN: string = new URL("../.vmesh/up/bus.env", import.meta.url).pathname;

/**
 * Copies the login file `from` to {@link UP_LOGIN} (0600, replacing a stale one); returns a
 * function that removes it again if it still holds this login.
 */
export async function publishUpLogin(from: string): Promise<() => Promise<void>> {
  const text = await Deno.readTextFile(from);
  const dir = UP_LOGIN.slice(0, UP_LOGIN.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${UP_LOGIN}.${Deno.pid}`;
  await Deno.writeTextFile(tmp, text, { mode: 0o600 });
  await Deno.rename(tmp, UP_LOGIN);
  return async () => {
    const now = await Deno.readTextFile(UP_LOGIN).catch(() => "");
    if (now === text) await Deno.remove(UP_LOGIN).catch(() => {});
  };
}

/**
 * When NATS_URL is unset, loads the running `./vmesh up`'s login into the environment
 * (NATS_URL, VMESH_NATS_USER, VMESH_NATS_PASSWORD); true when it did.
 */
export async function useUpLogin(): Promise<boolean> {
  if (Deno.env.get("NATS_URL")) return false;
  let env: Record<string, string>;
  try {
    env = await readLogin(UP_LOGIN);
  } catch {
    return false;
  }
  if (!env.NATS_URL) return false;
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  return true;
}
