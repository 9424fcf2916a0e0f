import assert from "node:assert/strict";
import { VirtualSwitch } from "./switch.ts";
import { isMac } from "./port.ts";

const frame = (n = 60) => new Uint8Array(n).fill(0xab);

Deno.test("hub: floods to every other port, drops from unknown ports and runts", () => {
  const sw = new VirtualSwitch("sw0", "hub");
  sw.join("a", "52:54:00:00:00:0A");
  sw.join("b", "52:54:00:00:00:0b");
  sw.join("c", "52:54:00:00:00:0c");
  assert.deepEqual(sw.route("a", frame()).map((p) => p.id), ["b", "c"]);
  assert.equal(sw.ports.get("a")?.mac, "52:54:00:00:00:0a");
  assert.deepEqual(sw.route("x", frame()), []);
  assert.deepEqual(sw.route("a", frame(10)), []);
  assert.deepEqual(sw.route("a", frame(1600)), []);
  assert.equal(sw.dropped, 3);
  assert.equal(sw.leave("c"), true);
  assert.equal(sw.leave("c"), false);
  assert.deepEqual(sw.route("b", frame()).map((p) => p.id), ["a"]);
});

Deno.test("echo: returns a frame to its sender", () => {
  const sw = new VirtualSwitch("sw0", "echo");
  sw.join("a", "52:54:00:00:00:0a");
  sw.join("b", "52:54:00:00:00:0b");
  assert.deepEqual(sw.route("a", frame()).map((p) => p.id), ["a"]);
  assert.equal(isMac("52:54:00:12:34:56"), true);
  assert.equal(isMac("52:54:00:12:34"), false);
});
