/**
 * Tries one login on a nats-server and prints the outcome as one line: `connected`, or the
 * error. Run as its own process: the socket a refused login leaves behind can end in an
 * ECONNRESET that nothing in the caller could catch.
 *
 *   deno run -A tests/nats_login_probe.ts nats://127.0.0.1:4222 [USER PASSWORD]
 */
import { connect } from "@nats-io/transport-node";

const [url, user, pass] = Deno.args;
try {
  const nc = await connect({
    servers: url.replace("nats://", ""),
    reconnect: false,
    ...(user ? { user, pass } : {}),
  });
  console.log("connected");
  await nc.close();
} catch (e) {
  const err = e as Error;
  console.log(`refused: ${err.message}${err.cause ? ` (${(err.cause as Error).message})` : ""}`);
}
Deno.exit(0);
