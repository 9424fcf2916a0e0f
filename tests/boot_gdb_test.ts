/**
 * The GDB stub on `./vmesh boot` (served by the CPU service on the bus): `--gdb
 * tcp:127.0.0.1:0 -S` holds the harts until Debian's gdb-multiarch connects; gdb sees one
 * thread per hart, breaks at the kernel's entry, reads registers, steps, and detaches; the
 * guest then boots and runs its batch command to the end.
 */
import assert from "node:assert/strict";
import { skippableName } from "../cli/test_summary.ts";
import { GDB, gdbBatch, gdbInstalled } from "./gdb_session.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;
const noGdb = gdbInstalled ? undefined : `${GDB} not installed (apt-get install gdb-multiarch)`;

Deno.test({
  name: skippableName(
    "vmesh boot --gdb -S: gdb-multiarch breaks in the kernel, then detaches",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        MAIN,
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
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stdout = new Response(child.stdout).text();
    const reader = child.stderr.getReader();
    let stderr = "";
    let port = 0;
    while (port === 0) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += new TextDecoder().decode(value);
      const m = /gdb stub on tcp:127\.0\.0\.1:(\d+), waiting for gdb/.exec(stderr);
      if (m) port = Number(m[1]);
    }
    const rest = (async () => {
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        stderr += new TextDecoder().decode(r.value);
      }
    })();
    assert.ok(port > 0, stderr);
    const out = await gdbBatch(null, port, [
      "info threads",
      "break *0x80200000",
      "continue",
      "info registers pc a0 a1",
      "stepi",
      "info registers pc",
      "delete",
      "detach",
    ]);
    const status = await child.status;
    await rest;
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
    assert.equal(status.code, 0, what);
    assert.match(await stdout, /^riscv64\r?$/m, what);
  },
});
