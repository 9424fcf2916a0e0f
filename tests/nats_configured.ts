/**
 * A nats-server run with a given config file and environment, as a container would run it
 * (`nats-server -c FILE`), on a free loopback port: for tests of committed configs.
 * @module
 */

/** A running configured nats-server. */
export interface ConfiguredNats {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts `nats-server -c config` with only `env` (plus PATH) in its environment; resolves once
 * it says it is ready, rejects with its output if it exits first.
 */
export async function startConfiguredNats(
  config: string,
  env: Record<string, string>,
): Promise<ConfiguredNats> {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  const child = new Deno.Command("nats-server", {
    args: ["-c", config, "-a", "127.0.0.1", "-p", String(port)],
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
    clearEnv: true,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  let ready: () => void = () => {};
  const isReady = new Promise<void>((r) => ready = r);
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      log += chunk;
      if (log.includes("Server is ready")) ready();
    }
  })();
  const exited = child.status.then(async (s) => (await reading, s.code));
  const first = await Promise.race([isReady.then(() => "ready"), exited]);
  if (first !== "ready") throw new Error(`nats-server exited ${first}: ${log.trim()}`);
  return {
    url: `nats://127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
