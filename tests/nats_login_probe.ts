/**
 * Tries one login on a nats-server and prints the outcome as one line: `connected`, or
 * `refused: <error>`. Run as its own process: the socket a refused login leaves behind can end
 * in an ECONNRESET that nothing in the caller could catch. `--bus` logs in through
 * `connect()` of @vmesh/bus (its error says what to do) instead of the bare NATS client.
 *
 *   deno run -A tests/nats_login_probe.ts [--bus] nats://127.0.0.1:4222 [USER PASSWORD]
 */
import { connect as natsConnect } from "@nats-io/transport-node";
import { connect } from "@vmesh/bus";

const bus = Deno.args[0] === "--bus";
const [url, user, pass] = Deno.args.slice(bus ? 1 : 0);
try {
  if (bus) {
    const b = await connect({ url, ...(user ? { auth: { user, pass } } : {}), log: () => {} });
    console.log("connected");
    await b.close();
  } else {
    const nc = await natsConnect({
      servers: url.replace("nats://", ""),
      reconnect: false,
      ...(user ? { user, pass } : {}),
    });
    console.log("connected");
    await nc.close();
  }
} catch (e) {
  const err = e as Error;
  console.log(`refused: ${err.message}${err.cause ? ` (${(err.cause as Error).message})` : ""}`);
}
Deno.exit(0);
