/**
 * A test child for lifeline_test.ts: calls watchLifeline(), writes what it armed as JSON to
 * the file given as the first argument, then waits for SIGTERM (and exits 0 on it, as a
 * service's drain does).
 */
import { watchLifeline } from "../lifeline.ts";

const ll = watchLifeline({ name: "lifeline-child" });
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
const report = ll
  ? { parent: ll.parent, pipe: ll.pipe, deathSignal: ll.deathSignal }
  : { none: true };
Deno.writeTextFileSync(Deno.args[0], JSON.stringify({ pid: Deno.pid, ...report }));
setInterval(() => {}, 1 << 30);
