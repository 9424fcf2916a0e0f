/**
 * The bus itself fails: `./vmesh boot`'s private nats-server is SIGKILLed twice while the
 * guest writes and fsyncs. The launcher starts it again on the same port with the same
 * logins; the CPU, console, disk and net services reconnect on their own (their subscriptions
 * and `$SRV` registrations come back), the guest keeps running, its I/O resumes, what it wrote
 * reads back from the disk (page cache dropped), `e2fsck -fn` finds the image clean, and the
 * gateway behind the switch answers the guest's ping after the restarts.
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

Deno.test("fault: nats-server SIGKILLed twice mid-run: every service reconnects, the guest's I/O resumes", async () => {
  const images = await ensureGuestImages();
  const boots: WatchedBoot[] = [];
  const dir = await Deno.makeTempDir({ prefix: "vmesh-fault-bus-" });
  try {
    const disk = `${dir}/disk.ext4`;
    await Deno.copyFile(images.disk, disk);
    const boot = track(
      boots,
      watchBoot(
        dir,
        ["--timeout", "300", "--name", "fb1", "--drive", disk, "--nic", `switch=fb${Deno.pid}`],
        `udhcpc -i eth0 -q -n -t 10 -T 2 >/dev/null 2>&1; ` +
          `mount /dev/vda /mnt && mkdir -p /mnt/w && ${GUEST_WRITER}; w a 120; echo writer-done $?; ` +
          "ping -c 3 -W 2 10.0.2.2; " +
          "sync; echo 3 > /proc/sys/vm/drop_caches; " +
          "for f in /mnt/w/*; do echo re ${f##*/} $(md5sum < $f | cut -c1-32); done; " +
          "umount /mnt && echo unmounted",
      ),
    );
    let pid = Number((await boot.waitStderr(/started nats-server \(pid (\d+)\)/))[1]);
    const outages: number[] = [];
    for (let k = 0; k < 2; k++) {
      const before = completedWrites(boot.console()).size;
      await boot.waitUntil(`${before + 10} writes`, (c) => completedWrites(c).size >= before + 10);
      const seen = boot.stderr.length;
      const killedAt = Date.now();
      Deno.kill(pid, "SIGKILL");
      pid = Number((await boot.waitStderr(/bus: restarted nats-server \(pid (\d+)\)/, seen))[1]);
      // The guest's writes go on: a write completes after the restart.
      const n = completedWrites(boot.console()).size;
      await boot.waitUntil("a write after the restart", (c) => completedWrites(c).size > n + 1);
      outages.push(Date.now() - killedAt);
    }
    const r = await boot.done;
    const text = boot.console();
    assert.equal(r.code, 0, `launcher exit ${r.code}\n${boot.stderr.slice(-30).join("\n")}`);
    assert.ok(r.output !== null, `the command finished\n${text.slice(-3000)}`);
    assert.match(r.output!, /writer-done 0/);
    assert.match(r.output!, /unmounted/);
    // The switch and the CPU's port came back too: the gateway answers after the restarts.
    assert.match(r.output!, /3 packets transmitted, 3 packets received/);
    assert.doesNotMatch(text, /^FAIL /m);
    assert.doesNotMatch(text, GUEST_IO_ERROR);
    assert.equal(
      boot.stderr.filter((l) => /bus: nats-server was killed \(SIGKILL\); restarting/.test(l))
        .length,
      2,
    );
    // Console lines the guest printed while nats-server was down can be lost (core NATS is
    // at most once); the files are the record: all 120 read back after the restarts, and each
    // one whose `ok` line arrived has the content the guest saw written.
    const written = completedWrites(text);
    assert.ok(written.size >= 110, `${written.size} ok lines`);
    const reread = new Map(
      [...text.matchAll(/^re (\S+) ([0-9a-f]{32})\r?$/gm)].map((m) => [m[1], m[2]]),
    );
    for (let i = 1; i <= 120; i++) assert.ok(reread.has(`a${i}`), `a${i} was written`);
    for (const [f, sum] of written) assert.equal(reread.get(f), sum, `${f} reads back as written`);
    const fsck = await e2fsck(disk);
    assert.equal(fsck.code, 0, fsck.out);
    console.log(
      `from each kill to the guest's second write after the restart: ${outages.join(", ")} ms`,
    );
  } finally {
    for (const b of boots) b.kill();
    await Promise.all(boots.map((b) => b.done));
    await Deno.remove(dir, { recursive: true });
  }
});
