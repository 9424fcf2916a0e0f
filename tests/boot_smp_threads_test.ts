/**
 * Linux on `vmesh run --smp N --smp-threads` (a Worker per hart): 2 harts under the translator
 * and the interpreter, 4 under the translator. The kernel brings up every hart (OpenSBI HSM),
 * `nproc` and /proc/cpuinfo say N, N parallel checksum jobs give the right sums, every hart ran
 * tasks (their /proc/stat lines), and each hart's thread retired instructions and took MMIO
 * through the mailbox; `vmesh boot --smp 2 --smp-threads` does the same in the CPU service. A guest reboot (`reboot -f`) stops
 * the hart threads and boots again on new ones.
 */
import assert from "node:assert/strict";
import { ensureGuestImages, GUEST_PROMPT, vmeshRunArgs } from "../guest/mod.ts";
import { VMESH_CLI } from "./riscv/run.ts";
import { bootBatch, imageArgs } from "./vmesh_boot.ts";

/** md5 of 4 MiB of zeros (`dd if=/dev/zero bs=64k count=64 | md5sum` on the host). */
const ZEROS_4M_MD5 = "b5cfa9d6c8febd618f91ac2843d50a1c";

/** N checksum jobs at once, then what the test checks. */
const command = (n: number) => {
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  return "nproc; grep -c ^processor /proc/cpuinfo; " +
    `for i in ${ids.join(" ")}; do ` +
    "(dd if=/dev/zero bs=64k count=64 2>/dev/null | md5sum > /tmp/s$i) & done; " +
    `wait; cat ${ids.map((i) => `/tmp/s${i}`).join(" ")}; grep '^cpu[0-9]' /proc/stat; ` +
    "poweroff -f\n";
};

for (const [harts, engine] of [[2, "jit"], [2, "interp"], [4, "jit"]] as const) {
  const name = `vmesh run --smp ${harts} --smp-threads --engine ${engine}`;
  Deno.test(`${name}: Linux on ${harts} hart threads`, async () => {
    const images = await ensureGuestImages();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--quiet",
        VMESH_CLI,
        ...vmeshRunArgs(images, {
          smp: harts,
          timeoutS: 240,
          extra: ["--smp-threads", "--engine", engine],
        }),
      ],
      env: { NO_COLOR: "1", VMESH_SMP_STATS: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const dec = new TextDecoder();
    let stdout = "";
    let typed = false;
    const writer = child.stdin.getWriter();
    for await (const chunk of child.stdout) {
      stdout += dec.decode(chunk, { stream: true });
      if (!typed && stdout.includes(GUEST_PROMPT)) {
        typed = true;
        await writer.write(new TextEncoder().encode(command(harts)));
        await writer.close();
      }
    }
    const { code } = await child.status;
    const err = await stderr;
    assert.equal(code, 0, `${stdout.slice(-2000)}\n${err}`);
    const lines = stdout.split("\n").map((l) => l.trim());
    const at = lines.indexOf(String(harts));
    assert.ok(
      at >= 0 && lines[at + 1] === String(harts),
      `nproc and cpuinfo: ${stdout.slice(-2000)}`,
    );
    const sums = lines.filter((l) => /^[0-9a-f]{32}\s+-$/.test(l));
    assert.deepEqual(sums.map((l) => l.split(/\s+/)[0]), Array(harts).fill(ZEROS_4M_MD5), stdout);
    const cpus = lines.filter((l) => /^cpu\d /.test(l));
    assert.equal(cpus.length, harts, stdout);
    for (const c of cpus) {
      const [, user, , system] = c.split(/\s+/).map(Number);
      assert.ok(user + system > 0, `${c}: this hart never ran a task`);
    }
    const threads = [...err.matchAll(/hart (\d) thread: (\d+) instructions, (\d+) MMIO/g)];
    assert.equal(threads.length, harts, err);
    for (const [, id, instret, mmio] of threads) {
      assert.ok(Number(instret) > 1e6 && Number(mmio) > 0, `hart ${id}: ${err}`);
    }
  });
}

Deno.test("vmesh run --smp 2 --smp-threads: reboot -f boots again on new hart threads", async () => {
  const images = await ensureGuestImages();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      VMESH_CLI,
      ...vmeshRunArgs(images, { smp: 2, timeoutS: 240, extra: ["--smp-threads"] }),
    ],
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const dec = new TextDecoder(), enc = new TextEncoder();
  const writer = child.stdin.getWriter();
  let stdout = "", prompts = 0;
  for await (const chunk of child.stdout) {
    stdout += dec.decode(chunk, { stream: true });
    const seen = stdout.split(GUEST_PROMPT).length - 1;
    if (seen > prompts) {
      prompts = seen;
      if (prompts === 1) await writer.write(enc.encode("reboot -f\n"));
      if (prompts === 2) {
        await writer.write(enc.encode("echo up again on $(nproc); poweroff -f\n"));
        await writer.close();
      }
    }
  }
  const { code } = await child.status;
  const err = await stderr;
  assert.equal(code, 0, `${stdout.slice(-2000)}\n${err}`);
  assert.equal(prompts >= 2, true, `one boot only: ${stdout.slice(-2000)}`);
  assert.match(stdout, /^up again on 2\r?$/m, stdout.slice(-2000));
});

Deno.test("vmesh boot --smp 2 --smp-threads: the CPU service runs Linux on 2 hart threads", async () => {
  const images = await ensureGuestImages();
  const r = await bootBatch(
    [...imageArgs(images), "--smp", "2", "--smp-threads"],
    command(2).replace("; poweroff -f\n", ""),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /vmesh-cpu: guest powered off .*, 2 hart threads/, r.stderr);
  const lines = r.stdout.split("\n").map((l) => l.trim());
  const at = lines.indexOf("2");
  assert.ok(at >= 0 && lines[at + 1] === "2", `nproc and cpuinfo: ${r.stdout}`);
  const sums = lines.filter((l) => /^[0-9a-f]{32}\s+-$/.test(l));
  assert.deepEqual(sums.map((l) => l.split(/\s+/)[0]), Array(2).fill(ZEROS_4M_MD5), r.stdout);
  const cpus = lines.filter((l) => /^cpu\d /.test(l));
  assert.equal(cpus.length, 2, r.stdout);
  for (const c of cpus) {
    const [, user, , system] = c.split(/\s+/).map(Number);
    assert.ok(user + system > 0, `${c}: this hart never ran a task`);
  }
});
