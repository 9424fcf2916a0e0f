/**
 * `vmesh run --record` / `--replay` on the real guest: a Linux boot with a command typed at its
 * prompt is recorded, then replayed twice without the terminal: same console output, every
 * checkpoint (RAM, harts, devices) equal; a tampered checkpoint is reported where it differs, and
 * a replay with other flags is refused before anything runs.
 */
import assert from "node:assert/strict";
import { ensureGuestImages, GUEST_PROMPT, type GuestImages, vmeshRunArgs } from "../guest/mod.ts";
import { VMESH_CLI } from "./riscv/run.ts";
import { encodeLog, parseLog } from "../services/cpu/replay/log_format.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `vmesh ARGS`; when `typeAtPrompt` is given, types it once the prompt shows. */
async function vmesh(extra: string[], images: GuestImages, typeAtPrompt?: string, mem?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--quiet",
      VMESH_CLI,
      ...vmeshRunArgs(images, { memory: mem, timeoutS: 300, extra }),
    ],
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const dec = new TextDecoder();
  let stdout = "";
  let typed = typeAtPrompt === undefined;
  const writer = child.stdin.getWriter();
  if (typed) await writer.close();
  for await (const chunk of child.stdout) {
    stdout += dec.decode(chunk, { stream: true });
    if (!typed && stdout.includes(GUEST_PROMPT)) {
      typed = true;
      await writer.write(new TextEncoder().encode(typeAtPrompt));
      await writer.close();
    }
  }
  const status = await child.status;
  return { code: status.code, stdout, stderr: await stderr } as Run;
}

Deno.test("vmesh run --record/--replay: a Linux boot and a typed command replay exactly", async () => {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-replay-" });
  try {
    const log = `${dir}/boot.log`;
    const rec = await vmesh(["--record", log], images, "echo replay-$((6*7)); poweroff -f\n");
    assert.equal(rec.code, 0, rec.stderr);
    assert.match(rec.stdout, /^replay-42\r?$/m, rec.stdout);
    const recorded = /recorded .*: (\d+) checkpoints, (\d+) instructions/.exec(rec.stderr);
    assert.ok(recorded && Number(recorded[1]) >= 2, rec.stderr);
    const { header, entries: lines } = parseLog(await Deno.readFile(log), log);
    assert.ok(lines.some((l) => "in" in l), "the typed command is in the log");

    for (let i = 0; i < 2; i++) {
      const rep = await vmesh(["--replay", log], images);
      assert.equal(rep.code, 0, rep.stderr);
      assert.equal(rep.stdout, rec.stdout, `replay ${i + 1}: the same console output`);
      const m = /matched (\d+) checkpoints \((\d+) instructions/.exec(rep.stderr);
      assert.ok(m, rep.stderr);
      assert.equal(Number(m[1]), Number(recorded[1]) + 1, "every checkpoint and the end state");
      assert.equal(m[2], recorded[2], "the same instruction count");
    }

    // A checkpoint that differs stops the replay there, saying so.
    const tampered = `${dir}/tampered.log`;
    const at = lines.findIndex((l) => "h" in l);
    const cp = lines[at] as { h: string };
    cp.h = "00000000" + cp.h.slice(8);
    await Deno.writeFile(tampered, encodeLog(header, lines));
    const bad = await vmesh(["--replay", tampered], images);
    assert.equal(bad.code, 1, bad.stderr);
    assert.match(bad.stderr, new RegExp(`diverged at step ${lines[at].s}: recorded 00000000`));

    // Other flags than the recording's: refused before the machine runs.
    const other = await vmesh(["--replay", log], images, undefined, "128M");
    assert.equal(other.code, 1);
    assert.match(other.stderr, /recorded with ramSize 268435456, not 134217728/);
    assert.equal(other.stdout, "");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
