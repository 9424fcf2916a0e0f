/**
 * The podman settings these machines need, as a containers.conf that podman reads through
 * `CONTAINERS_CONF` (nothing under /etc is edited): the default runtime crun refuses the hybrid
 * cgroup layout here and setting the default rlimits needs a capability the machines lack, so
 * runc runs the containers with explicit nofile/nproc limits.
 *
 * ```sh
 * CONTAINERS_CONF=$(deno run -A containers/podman_env.ts) podman-compose ... up
 * ```
 * @module
 */

const ROOT = new URL("..", import.meta.url).pathname;

/** The containers.conf text: runtime runc, ulimits podman can set without extra capabilities. */
export const CONTAINERS_CONF_TEXT =
  `# Written by vmesh (containers/podman_env.ts); read through CONTAINERS_CONF.
[containers]
# Without explicit limits podman sets the default rlimits, which needs CAP_SYS_RESOURCE here.
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
# crun refuses this machine's hybrid cgroup layout; runc runs it.
runtime = "runc"
`;

/**
 * Writes containers.conf into `dir` (default .vmesh/containers/) and returns the environment
 * for podman and podman-compose: the current one with CONTAINERS_CONF pointing at that file.
 *
 * @example
 * ```ts
 * const env = await podmanEnv(await Deno.makeTempDir());
 * await new Deno.Command("podman", { args: ["info"], env }).output();
 * ```
 */
export async function podmanEnv(dir = `${ROOT}.vmesh/containers`): Promise<Record<string, string>> {
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}/containers.conf`;
  await Deno.writeTextFile(file, CONTAINERS_CONF_TEXT);
  return { ...Deno.env.toObject(), CONTAINERS_CONF: file };
}

if (import.meta.main) {
  console.log((await podmanEnv(Deno.args[0])).CONTAINERS_CONF);
}
