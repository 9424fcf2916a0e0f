/**
 * Disk faults with a real Linux guest under `./vmesh boot`: the disk service is SIGKILLed
 * again and again while two guest writers fsync file after file (every other time frozen
 * with SIGSTOP for 300 ms first, so that requests are in flight when it dies). The launcher restarts it
 * (--restart), the CPU's block client resubmits what was in flight under the same request
 * ids, and the guest sees no I/O error; a second boot on the same image then finds every
 * file the guest saw completed with its checksum, and `e2fsck -fn` finds the image clean.
 * And a disk service that stays down past --block-deadline: the guest gets a clean I/O
 * error (the writer's dd fails, the kernel logs it) and the run ends, no hang.
 */
import assert from "node:assert/strict";
import { ensureGuestImages } from "../guest/mod.ts";
import {
  completedWrites,
  e2fsck,
  GUEST_IO_ERROR,
  GUEST_WRITER,
  track,
  watchBoot,
  type WatchedBoot,
} from "./fault_harness.ts";

/** Kills the disk service this many times. */
const KILLS = 5;

/** Runs `qemu-img ARGS`; its exit code and output. */
async function qemuImg(args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command("qemu-img", { args, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** The kill loop on a raw image or on a qcow2 image (whose metadata the service updates). */
async function killedUnderWrites(format: "raw" | "qcow2"): Promise<void> {
  const images = await ensureGuestImages();
  const boots: WatchedBoot[] = [];
  const dir = await Deno.makeTempDir({ prefix: "vmesh-fault-disk-" });
  try {
    const disk = `${dir}/disk.${format === "raw" ? "ext4" : "qcow2"}`;
    if (format === "raw") await Deno.copyFile(images.disk, disk);
    else {
      const c = await qemuImg(["convert", "-f", "raw", "-O", "qcow2", images.disk, disk]);
      assert.equal(c.code, 0, c.out);
    }
    const drive = `${disk},format=${format}`;
    const boot = track(
      boots,
      watchBoot(
        dir,
        ["--timeout", "400", "--name", "fd1", "--drive", drive],
        `mount /dev/vda /mnt && mkdir -p /mnt/w && ${GUEST_WRITER}; w a 60 & pa=$!; w b 60; rb=$?; ` +
          `wait $pa; echo writers-done $? $rb`,
      ),
    );
    let pid = Number((await boot.waitStderr(/started vmesh-disk disk0 \(pid (\d+)\)/))[1]);
    const pids = [pid];
    const gaps: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      // Some writes done since the last restart, then kill it while the next ones are in flight.
      const before = completedWrites(boot.console()).size;
      await boot.waitUntil(
        `${before + 8} completed writes`,
        (c) => completedWrites(c).size >= before + 8,
      );
      const seen = boot.stderr.length;
      const at = Date.now();
      // Every other kill first freezes the service for 300 ms, so requests are surely in flight.
      if (k % 2 === 1) {
        Deno.kill(pid, "SIGSTOP");
        await new Promise((r) => setTimeout(r, 300));
      }
      Deno.kill(pid, "SIGKILL");
      const n = completedWrites(boot.console()).size;
      pid = Number((await boot.waitStderr(/restarted vmesh-disk disk0 \(pid (\d+)\)/, seen))[1]);
      const restartedMs = Date.now() - at;
      assert.ok(!pids.includes(pid), "a new disk service process");
      pids.push(pid);
      await boot.waitUntil("writes after the restart", (c) => completedWrites(c).size >= n + 2);
      gaps.push(`${restartedMs}/${Date.now() - at}`);
    }
    const r = await boot.done;
    const text = boot.console();
    assert.equal(r.code, 0, `launcher exit ${r.code}\n${boot.stderr.slice(-30).join("\n")}`);
    assert.ok(r.output !== null, `the command finished\n${text.slice(-3000)}`);
    assert.match(r.output!, /writers-done 0 0/, r.output!);
    assert.doesNotMatch(text, /^FAIL /m);
    assert.doesNotMatch(text, GUEST_IO_ERROR);
    const restarts = boot.stderr.filter((l) =>
      /vmesh-disk disk0 was killed \(SIGKILL\); restarting/.test(l)
    );
    assert.equal(restarts.length, KILLS, "one restart log line per kill");
    const written = completedWrites(text);
    assert.equal(written.size, 120, "every write completed");

    // Second boot on the same image: the journal replays, every completed file reads back.
    const check = track(
      boots,
      watchBoot(
        dir,
        ["--timeout", "300", "--name", "fd2", "--drive", drive],
        "mount /dev/vda /mnt && for f in /mnt/w/*; do echo ok ${f##*/} $(md5sum < $f | cut -c1-32); done; " +
          "umount /mnt && echo unmounted",
      ),
    );
    const c = await check.done;
    assert.equal(c.code, 0, check.stderr.slice(-20).join("\n"));
    assert.match(c.output ?? "", /unmounted/, (c.output ?? check.console()).slice(-800));
    const after = completedWrites(check.console());
    let lost = 0;
    for (const [file, sum] of written) if (after.get(file) !== sum) lost++;
    assert.equal(lost, 0, `${lost} of ${written.size} completed writes lost or changed`);
    let raw = disk;
    let leaks = "";
    if (format === "qcow2") {
      // 0: clean; 3: leaked clusters only (space, not data: what a kill mid-allocation leaves).
      const check = await qemuImg(["check", "-f", "qcow2", disk]);
      assert.ok(check.code === 0 || check.code === 3, `qemu-img check: ${check.out}`);
      leaks = check.code === 3 ? `; qemu-img check: ${check.out.trim().split("\n")[0]}` : "";
      raw = `${dir}/disk.raw`;
      const c = await qemuImg(["convert", "-f", "qcow2", "-O", "raw", disk, raw]);
      assert.equal(c.code, 0, c.out);
    }
    const fsck = await e2fsck(raw);
    assert.equal(fsck.code, 0, fsck.out);
    console.log(
      `${format}: ${KILLS} kills, ${written.size} fsync'd writes, 0 lost; ms from each kill to ` +
        `the new service / to the guest's second write after it: ${gaps.join(", ")}${leaks}`,
    );
  } finally {
    for (const b of boots) b.kill();
    await Promise.all(boots.map((b) => b.done));
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("fault: disk service SIGKILLed 5 times under fsync'd writes, raw image: nothing lost, no I/O error", () =>
  killedUnderWrites("raw"));

Deno.test("fault: disk service SIGKILLed 5 times under fsync'd writes, qcow2 image: nothing lost, no I/O error", () =>
  killedUnderWrites("qcow2"));

Deno.test("fault: disk service down past --block-deadline: a clean I/O error in the guest, no hang", async () => {
  const images = await ensureGuestImages();
  const boots: WatchedBoot[] = [];
  const dir = await Deno.makeTempDir({ prefix: "vmesh-fault-disk-down-" });
  try {
    const disk = `${dir}/disk.ext4`;
    await Deno.copyFile(images.disk, disk);
    // One restart a minute: the second kill leaves the disk service down.
    const boot = track(
      boots,
      watchBoot(
        dir,
        [
          "--timeout",
          "300",
          "--name",
          "fd3",
          "--drive",
          disk,
          "--restart",
          "on-failure:1",
          "--block-deadline",
          "3",
        ],
        `mount /dev/vda /mnt && mkdir -p /mnt/w && ${GUEST_WRITER}; w a 100000; echo writer-ended $?`,
      ),
    );
    let pid = Number((await boot.waitStderr(/started vmesh-disk disk0 \(pid (\d+)\)/))[1]);
    await boot.waitConsole(/^ok a5 /m);
    let seen = boot.stderr.length;
    Deno.kill(pid, "SIGKILL");
    pid = Number((await boot.waitStderr(/restarted vmesh-disk disk0 \(pid (\d+)\)/, seen))[1]);
    const n = completedWrites(boot.console()).size;
    await boot.waitConsole(new RegExp(`^ok a${n + 5} `, "m"));
    seen = boot.stderr.length;
    Deno.kill(pid, "SIGKILL");
    await boot.waitStderr(
      /vmesh-disk disk0 was killed \(SIGKILL\); not restarted: 1 restarts/,
      seen,
    );
    const downAt = Date.now();
    const failed = await boot.waitConsole(/^FAIL (a\d+)/m);
    const failedAfterMs = Date.now() - downAt;
    const r = await boot.done;
    const text = boot.console();
    assert.notEqual(r.code, 124, "the run ended before its --timeout");
    assert.ok(r.output !== null, `the command finished\n${text.slice(-3000)}`);
    assert.match(r.output!, /writer-ended 1/);
    assert.match(text, /I\/O error/, "the kernel saw an I/O error");
    // The failed write is the first one after the service went down for good.
    const last = completedWrites(text).size;
    assert.equal(failed[1], `a${last + 1}`);
    assert.ok(
      failedAfterMs >= 2000,
      `the write failed ${failedAfterMs} ms after the disk went down`,
    );
    console.log(`disk down for good: the guest's write failed ${failedAfterMs} ms later`);
  } finally {
    for (const b of boots) b.kill();
    await Promise.all(boots.map((b) => b.done));
    await Deno.remove(dir, { recursive: true });
  }
});
