import assert from "node:assert/strict";
import {
  consoleSubject,
  deviceSubject,
  lastToken,
  memorySubject,
  netPortSubject,
  switchPrefix,
  vmControlPrefix,
} from "./mod.ts";

Deno.test("subjects: one scheme vmesh.<vm>.<device>.<op>", () => {
  assert.equal(deviceSubject("vm1", "disk0", "read"), "vmesh.vm1.disk0.read");
  assert.equal(consoleSubject("vm1", "out"), "vmesh.vm1.console.out");
  assert.equal(consoleSubject("vm1", "in"), "vmesh.vm1.console.in");
  assert.equal(vmControlPrefix("vm1"), "vmesh.vm1.ctl");
  assert.equal(switchPrefix("sw0"), "vmesh.net.sw0");
  assert.equal(netPortSubject("sw0", "p1", "tx"), "vmesh.net.sw0.port.p1.tx");
  assert.equal(memorySubject("put_page"), "vmesh.memory.put_page");
  assert.equal(lastToken("vmesh.vm1.disk0.read"), "read");
});

Deno.test("subjects: tokens with dots or wildcards are refused", () => {
  for (const bad of ["a.b", "*", ">", "", "a b"]) {
    assert.throws(() => deviceSubject(bad, "disk0", "read"), TypeError);
    assert.throws(() => deviceSubject("vm1", "disk0", bad), TypeError);
  }
});
