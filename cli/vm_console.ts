/**
 * `./vmesh console NAME` — attaches this terminal to a VM's serial console, as `virsh
 * console` does: the output so far (from its host's agent), then live output from
 * `vmesh.<vm>.console.out`; keys go to the guest through the console service's `send` op.
 * `Ctrl-]` detaches (the VM keeps running); so does the end of a piped stdin.
 * @module
 */

import { BusError, connect, consoleMsgs, consoleSubject, control } from "@vmesh/bus";
import { useUpLogin } from "./up_login.ts";

const USAGE = `Usage: ./vmesh console NAME

Attaches to VM NAME's serial console: prints its output so far, then follows it; what you
type goes to the guest. Ctrl-] detaches (the VM keeps running). NATS_URL selects the bus.`;

const DETACH = 0x1d; // Ctrl-]

/** Runs `./vmesh console args`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  if (args.includes("-h") || args.includes("--help")) {
    console.log(USAGE);
    return 0;
  }
  if (args.length !== 1 || args[0].startsWith("-")) {
    console.error(`vmesh console: needs one NAME\n${USAGE}`);
    return 2;
  }
  const name = args[0];
  await useUpLogin();
  const natsUrl = Deno.env.get("NATS_URL");
  if (!natsUrl) {
    console.error(
      "vmesh console: NATS_URL is not set and no ./vmesh up runs here: point it at the " +
        "control service's bus",
    );
    return 2;
  }
  const bus = await connect({ url: natsUrl, name: `vmesh-cli-console-${name}`, log: () => {} });
  const ctl = bus.client({ prefix: control.CONTROL_PREFIX }, control.ops, { timeoutMs: 10_000 });
  const out = (b: Uint8Array) => Deno.stdout.writeSync(b);
  let raw = false;
  try {
    const vm = await ctl.call("inspect", { name });
    if (vm.state !== control.VmState.RUNNING) {
      console.error(`vmesh console: VM ${name} is not running (./vmesh start ${name})`);
      return 1;
    }
    // Live output is held until the scrollback is printed, then trimmed to what follows it.
    const held: consoleMsgs.ByteBatch[] = [];
    let printed = -1;
    const sub = bus.subscribe(consoleMsgs.byteBatch, consoleSubject(name, "out"), (b) => {
      if (printed < 0) return void held.push(b);
      const skip = Math.max(0, printed - b.seq);
      if (skip < b.data.length) out(b.data.subarray(skip));
      printed = Math.max(printed, b.seq + b.data.length);
    });
    await bus.flush();
    const scroll = new TextEncoder().encode((await ctl.call("logs", { name })).text);
    console.error(`Connected to VM ${name} on ${vm.host}\nEscape character is ^]`);
    out(scroll);
    printed = scroll.length;
    for (const b of held.splice(0)) {
      const skip = Math.max(0, printed - b.seq);
      if (skip < b.data.length) out(b.data.subarray(skip));
      printed = Math.max(printed, b.seq + b.data.length);
    }
    const keys = bus.client({ vm: name, device: "console" }, consoleMsgs.ops, { timeoutMs: 5000 });
    if (Deno.stdin.isTerminal()) {
      Deno.stdin.setRaw(true);
      raw = true;
    }
    for await (const chunk of Deno.stdin.readable) {
      const stop = chunk.indexOf(DETACH);
      const data = stop >= 0 ? chunk.subarray(0, stop) : chunk;
      if (data.length) await keys.call("send", { seq: 0, data });
      if (stop >= 0) break;
    }
    // A piped stdin ended: give the guest a moment to answer the last keys.
    if (!raw) await new Promise((r) => setTimeout(r, 1500));
    sub.unsubscribe();
    return 0;
  } catch (e) {
    if (!(e instanceof BusError)) throw e;
    console.error(`vmesh console: ${e.message}`);
    return 1;
  } finally {
    if (raw) Deno.stdin.setRaw(false);
    if (raw) console.error("");
    await bus.close();
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
