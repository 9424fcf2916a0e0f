/**
 * The GDB stub on `./vmesh boot` (served by the CPU service on the bus): `--gdb
 * tcp:127.0.0.1:0 -S` holds the harts until Debian's gdb-multiarch connects; gdb sees one
 * thread per hart, breaks at the kernel's entry, reads registers, steps, and detaches; the
 * guest then boots and runs its batch command to the end.
 */
import assert from "node:assert/strict";
import { skippableName } from "../cli/test_summary.ts";
import { GDB, gdbBatch, gdbInstalled, startWithGdbStub } from "./gdb_session.ts";

const noGdb = gdbInstalled ? undefined : `${GDB} not installed (apt-get install gdb-multiarch)`;

Deno.test({
  name: skippableName(
    "vmesh boot --gdb -S: gdb-multiarch breaks in the kernel, then detaches",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const vm = await startWithGdbStub(
      [
        "boot",
        "--timeout",
        "300",
        "--smp",
        "2",
        "--gdb",
        "tcp:127.0.0.1:0",
        "-S",
        "--",
        "uname -m",
      ],
      330_000,
      /gdb stub on tcp:127\.0\.0\.1:(\d+), waiting for gdb/,
    );
    const out = await gdbBatch(null, vm.port, [
      "info threads",
      "break *0x80200000",
      "continue",
      "info registers pc a0 a1",
      "stepi",
      "info registers pc",
      "delete",
      "detach",
    ]);
    const { code, stdout, stderr } = await vm.done;
    const what = `gdb:\n${out}\nboot stderr:\n${stderr}`;
    assert.match(out, /Thread 1 \(hart 0\)[^]*Thread 2 \(hart 1\)/, what);
    assert.match(out, /Breakpoint 1, 0x0000000080200000 in \?\? \(\)/, what);
    assert.match(out, /^pc\s+0x80200000\s/m, what);
    // OpenSBI enters the kernel with a0 = the boot hart's id and a1 = the device tree.
    assert.match(out, /^a0\s+0x[01]\s/m, what);
    assert.match(out, /^a1\s+0x8[0-9a-f]{7}\s/m, what);
    const pcs = [...out.matchAll(/^pc\s+(0x[0-9a-f]+)/gm)].map((m) => m[1]);
    assert.equal(pcs.length, 2, what);
    assert.notEqual(pcs[1], pcs[0], `stepi moved: ${what}`);
    assert.match(out, /\[Inferior 1 \(Remote target\) detached\]/, what);
    assert.equal(code, 0, what);
    assert.match(stdout, /^riscv64\r?$/m, what);
  },
});
