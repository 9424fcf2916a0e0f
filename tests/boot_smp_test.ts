/**
 * Linux with `--smp 4` under both engines: the kernel brings up four harts (OpenSBI HSM),
 * `nproc` and /proc/cpuinfo say 4, four parallel checksum jobs give the right sums, and every
 * hart spent time running them (its /proc/stat line).
 */
import assert from "node:assert/strict";
import { ensureGuestImages } from "../guest/mod.ts";
import { bootBatch, imageArgs } from "./vmesh_boot.ts";

/** md5 of 4 MiB of zeros (`dd if=/dev/zero bs=64k count=64 | md5sum` on the host). */
const ZEROS_4M_MD5 = "b5cfa9d6c8febd618f91ac2843d50a1c";

const COMMAND = "nproc; grep -c ^processor /proc/cpuinfo; " +
  "for i in 1 2 3 4; do (dd if=/dev/zero bs=64k count=64 2>/dev/null | md5sum > /tmp/s$i) & done; " +
  "wait; cat /tmp/s1 /tmp/s2 /tmp/s3 /tmp/s4; grep '^cpu[0-9]' /proc/stat";

for (const engine of ["jit", "interp"]) {
  Deno.test(`vmesh boot --smp 4 --engine ${engine}: Linux runs on 4 harts`, async () => {
    const images = await ensureGuestImages();
    const r = await bootBatch([...imageArgs(images), "--smp", "4", "--engine", engine], COMMAND);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n").map((l) => l.trim());
    const at = lines.indexOf("4");
    assert.ok(at >= 0 && lines[at + 1] === "4", `nproc and cpuinfo: ${r.stdout}`);
    const sums = lines.filter((l) => /^[0-9a-f]{32}\s+-$/.test(l));
    assert.deepEqual(sums.map((l) => l.split(/\s+/)[0]), Array(4).fill(ZEROS_4M_MD5), r.stdout);
    const cpus = lines.filter((l) => /^cpu\d /.test(l));
    assert.equal(cpus.length, 4, r.stdout);
    for (const c of cpus) {
      const [, user, , system] = c.split(/\s+/).map(Number);
      assert.ok(user + system > 0, `${c}: this hart never ran a task`);
    }
  });
}
