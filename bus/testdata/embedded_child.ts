/**
 * A test process that connects without NATS_URL (so the embedded nats-server
 * starts), prints {"event":"started",url,pid,port,storeDir} and then, on SIGUSR1,
 * by MODE: "close" closes the bus and ends normally; "exit" calls Deno.exit(0)
 * without closing; "throw" dies of an uncaught error; "wait" ignores it (send
 * SIGINT/SIGTERM).
 */
import { connect } from "../mod.ts";

Deno.env.delete("NATS_URL");
const mode = Deno.env.get("MODE") ?? "close";
const bus = await connect({ name: "embedded-child" });
const e = bus.embedded!;
await bus.nc.flush();
const act = async () => {
  if (mode === "close") {
    Deno.removeSignalListener("SIGUSR1", act);
    await bus.close();
  } else if (mode === "exit") {
    Deno.exit(0);
  } else if (mode === "throw") {
    throw new Error("boom");
  }
};
Deno.addSignalListener("SIGUSR1", act);
console.log(JSON.stringify({
  event: "started",
  url: bus.url,
  pid: e.pid,
  port: e.port,
  storeDir: e.storeDir,
}));
