/**
 * The net service dies under a TCP transfer: two `./vmesh boot` VMs on one switch (the first
 * launcher starts it, the second finds it on the shared bus), a 12 MiB HTTP download (twice: once for scale) from
 * one guest's busybox httpd to the other's wget. The switch is SIGKILLed mid-transfer; the
 * first launcher restarts it, both ports join again (their periodic re-join), and the same
 * TCP connection recovers: the download completes with the right checksum, and ping works.
 */
import assert from "node:assert/strict";
import { readLogin } from "../bus/admin_login.ts";
import { ensureGuestImages } from "../guest/mod.ts";
import { track, watchBoot, type WatchedBoot } from "./fault_harness.ts";

const SERVER = "10.0.2.10";
const ip = (addr: string) => `console=ttyS0 ip=${addr}::10.0.2.2:255.255.255.0::eth0:off`;

Deno.test("fault: switch SIGKILLed mid-download: ports re-join, the TCP transfer completes intact", async () => {
  await ensureGuestImages();
  const boots: WatchedBoot[] = [];
  const dir = await Deno.makeTempDir({ prefix: "vmesh-fault-net-" });
  const sw = `fsw${Deno.pid}`;
  try {
    const server = track(
      boots,
      watchBoot(
        dir,
        ["--timeout", "300", "--name", "fna", "--nic", `switch=${sw}`, "--append", ip(SERVER)],
        "mkdir -p /www && dd if=/dev/urandom of=/www/big bs=64k count=192 2>/dev/null && " +
          "echo big $(md5sum < /www/big | cut -c1-32) && httpd -f -p 80 -h /www",
      ),
    );
    const login = (await server.waitStderr(/admin login for tools in (\S+) \(0600/))[1];
    const netPid = Number(
      (await server.waitStderr(new RegExp(`started vmesh-net ${sw} \\(pid (\\d+)\\)`)))[1],
    );
    const sum = (await server.waitConsole(/^big ([0-9a-f]{32})/m))[1];

    const client = track(
      boots,
      watchBoot(
        dir,
        ["--timeout", "300", "--name", "fnb", "--nic", `switch=${sw}`, "--append", ip("10.0.2.11")],
        `n=0; until ping -c 1 -W 1 ${SERVER} >/dev/null; do n=$((n+1)); [ $n -gt 60 ] && exit 9; done; ` +
          `sleep 1; echo start0; wget -q -O - http://${SERVER}/big | md5sum; echo end0; ` +
          `echo start; wget -q -O - http://${SERVER}/big | md5sum; echo end; ` +
          `ping -c 3 -W 2 ${SERVER}`,
        await readLogin(login),
      ),
    );
    await client.waitStderr(new RegExp(`switch ${sw}: already on the bus`));
    // A first download without a fault, for scale.
    await client.waitConsole(/^start0\r?$/m);
    const t0 = Date.now();
    await client.waitConsole(/^end0\r?$/m);
    const baselineMs = Date.now() - t0;
    await client.waitConsole(/^start\r?$/m);
    await new Promise((r) => setTimeout(r, 300));
    const seen = server.stderr.length;
    assert.doesNotMatch(client.console(), /^end\r?$/m, "the download still runs at the kill");
    Deno.kill(netPid, "SIGKILL");
    const killedAt = Date.now();
    await server.waitStderr(new RegExp(`restarted vmesh-net ${sw} \\(pid (\\d+)\\)`), seen);
    await client.waitConsole(/^end\r?$/m);
    const tookMs = Date.now() - killedAt;
    const r = await client.done;
    assert.equal(r.code, 0, `client exit ${r.code}\n${client.stderr.slice(-20).join("\n")}`);
    assert.ok(r.output !== null, client.console().slice(-2000));
    const sums = [...r.output!.matchAll(/^([0-9a-f]{32}) {2}-\r?$/gm)].map((m) => m[1]);
    assert.deepEqual(sums, [sum, sum], "both downloads are intact");
    assert.match(r.output!, /3 packets transmitted, 3 packets received/);
    assert.equal(
      server.stderr.filter((l) => new RegExp(`vmesh-net ${sw} was killed \\(SIGKILL\\)`).test(l))
        .length,
      1,
    );
    console.log(
      `download without a fault ${baselineMs} ms; with the switch killed 300 ms in, ` +
        `it ended ${tookMs} ms after the kill`,
    );
  } finally {
    for (const b of boots) b.kill("SIGTERM");
    await Promise.all(boots.map((b) => b.done));
    await Deno.remove(dir, { recursive: true });
  }
});
