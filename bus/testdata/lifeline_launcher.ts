/**
 * A test launcher for lifeline_test.ts: starts an embedded nats-server and one
 * lifeline_child.ts per mode in its arguments ("pipe": stdin is the lifeline pipe; "signal":
 * stdin inherited, the parent-death signal alone; "pipe-only": the pipe and no FFI
 * permission, so no parent-death signal), writes {"nats": pid, "children": [pid]}
 * to $OUT, and waits to be killed.
 */
import { lifelineSpawnOptions } from "../lifeline.ts";
import { startEmbeddedNats } from "../nats_server.ts";

const dir = Deno.args[0];
const modes = Deno.args.slice(1);
const child = new URL("./lifeline_child.ts", import.meta.url).pathname;
const nats = await startEmbeddedNats({ handleSignals: false });
const children = modes.map((mode, i) => {
  const ll = lifelineSpawnOptions(mode === "signal" ? "inherit" : "null");
  const perms = mode === "pipe-only"
    ? ["--no-prompt", "--allow-read", "--allow-write", "--allow-env", "--allow-run"]
    : ["-A"];
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...perms, child, `${dir}/child${i}.json`],
    env: ll.env,
    stdin: ll.stdin,
    stdout: "null",
  }).spawn().pid;
});
Deno.writeTextFileSync(`${dir}/launcher.json`, JSON.stringify({ nats: nats.pid, children }));
setInterval(() => {}, 1 << 30);
