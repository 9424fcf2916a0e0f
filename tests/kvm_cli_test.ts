/**
 * `vmesh boot --accel kvm` (QEMU's flag) selects the x86-64 KVM engine, and its errors are one
 * line with what to do: a kernel image of an unknown format, a missing /dev/kvm (openKvm on a
 * path that does not exist), another accelerator name. No guest runs, so no /dev/kvm is needed
 * except for the format check, which is refused before any KVM resource is taken.
 */
import assert from "node:assert/strict";
import { KvmError, openKvm } from "../services/cpu/kvm/mod.ts";
import { kvmRequested } from "../services/cpu/kvm/main.ts";
import { bootCli as boot } from "./vmesh_boot.ts";

Deno.test("kvmRequested: --accel kvm and --accel=kvm before --, not after it", () => {
  assert.equal(kvmRequested(["--accel", "kvm"]), true);
  assert.equal(kvmRequested(["-m", "256", "--accel=kvm", "--", "true"]), true);
  assert.equal(kvmRequested(["--accel", "tcg"]), false);
  assert.equal(kvmRequested(["--", "--accel", "kvm"]), false);
  assert.equal(kvmRequested([]), false);
});

Deno.test("vmesh boot --accel kvm: a kernel of unknown format is one error line, exit 1", async () => {
  const junk = await Deno.makeTempFile();
  try {
    await Deno.writeFile(junk, new Uint8Array(8192).fill(0x41));
    const r = await boot(["--accel", "kvm", "--kernel", junk, "--initrd", junk, "--", "true"]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^vmesh: unknown kernel format/m);
    assert.doesNotMatch(r.stderr, /at .*\.ts:\d+/, "no stack trace");
  } finally {
    await Deno.remove(junk);
  }
});

Deno.test("vmesh boot --accel kvm --help names the KVM engine's flags", async () => {
  const r = await boot(["--accel", "kvm", "--help"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /vmesh boot --accel kvm .*--kernel bzImage\|vmlinux/);
});

Deno.test("openKvm: a missing device says the host has no KVM and what to load", () => {
  assert.throws(
    () => openKvm("/nonexistent/kvm"),
    (e: unknown) =>
      e instanceof KvmError &&
      /does not exist: this host has no KVM \(load kvm_intel/.test(e.message),
  );
});
