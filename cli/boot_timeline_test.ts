import assert from "node:assert/strict";
import { stepsOf } from "./boot_timeline.ts";

Deno.test("boot timeline: each step at its first line, unknown lines ignored", () => {
  const t = stepsOf([
    [100, "vmesh boot: starting VM vm1: bus, console, 1 disk(s), cpu (256 MiB RAM, 1 hart)"],
    [130, "vmesh boot: bus: private nats-server at nats://127.0.0.1:4222 (a login per service)"],
    [131, "vmesh boot: started vmesh-cpu (pid 7)"],
    [300, "[vmesh-console] vmesh-console ready: vmesh.vm1.console backends=terminal"],
    [310, "[vmesh-console] vmesh-console ready: again"],
    [320, "something else"],
    [400, "[vmesh-cpu] vmesh-cpu ready: vmesh.vm1.ctl waiting-for-start ram=256M"],
    [900, "vmesh boot: guest: the shell prompt appeared"],
  ]);
  assert.deepEqual([...t], [
    ["launcher running", 100],
    ["nats-server up", 130],
    ["cpu spawned", 131],
    ["console ready", 300],
    ["cpu ready", 400],
    ["shell prompt", 900],
  ]);
});
