/**
 * A test process: subscribes to `$SUBJECT` on `$NATS_URL`, prints "ready" once subscribed, then
 * one line per message with the wall-clock time (Date.now()) it arrived.
 */
import { connect } from "@nats-io/transport-node";

const nc = await connect({ servers: Deno.env.get("NATS_URL")!.replace(/^nats:\/\//, "") });
nc.subscribe(Deno.env.get("SUBJECT")!, { callback: () => console.log(String(Date.now())) });
await nc.flush();
console.log("ready");
