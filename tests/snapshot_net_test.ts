/**
 * A restored VM keeps its network and its busy disk: `./vmesh boot --nic
 * switch=lan` on a real nats-server, the guest takes a DHCP lease and pings the gateway every
 * second while a background loop keeps writing its disk with fsync; `./vmesh snapshot`, the
 * source is stopped (its switch with it), `./vmesh restore` starts the switch again and the
 * restored guest pings on from the same address, its writer carrying on without an I/O error.
 */
import assert from "node:assert/strict";
import { codecFor, type memory, startEmbeddedNats } from "@vmesh/bus";
import { ensureGuestImages } from "../guest/mod.ts";
import { run, until, vmesh } from "./snapshot_test_support.ts";

const GUEST = "udhcpc -i eth0 -q -n -t 10 -T 2 >/dev/null; " +
  "(while true; do dd if=/dev/zero of=/dev/vda bs=64k count=32 seek=64 conv=fsync 2>/dev/null " +
  '|| echo "io error"; done) & ' +
  "i=0; while true; do i=$((i+1)); " +
  'a=$(ip -4 addr show eth0 | grep -o "inet [0-9.]*"); ' +
  'if ping -c 1 -W 1 10.0.2.2 >/dev/null; then echo "net $i up $a"; ' +
  'else echo "net $i down"; fi; sleep 1; done';

/** Block requests in flight in the virtio-blk record of snapshot `name` of dir store `store`. */
async function inflight(store: string, name: string): Promise<number> {
  const m = codecFor<memory.SnapshotManifest>("vmesh.memory.SnapshotManifest")
    .decode(await Deno.readFile(`${store}/manifests/${name}`));
  const blk = m.devices.find((d) => d.kind === "virtio-mmio:2")!;
  return JSON.parse(new TextDecoder().decode(blk.state)).device.inflight.length;
}

/** The "net N up inet A" lines of `text` as [N, A]. */
const pings = (text: string): [number, string][] =>
  [...text.matchAll(/net (\d+) up (inet [\d.]+)\r?\n/g)].map((m) => [Number(m[1]), m[2]]);

Deno.test("snapshot and restore: the network and a busy disk carry on", async () => {
  await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-snapshot-net-" });
  const nats = await startEmbeddedNats();
  const env = { NATS_URL: nats.url };
  const store = ["--store", `dir:${dir}/store`];
  const procs: Deno.ChildProcess[] = [];
  const text = (f: string) => Deno.readTextFile(f).catch(() => "");
  try {
    const boot = vmesh(
      [
        "boot",
        "--name",
        "netA",
        "--nic",
        "switch=lan",
        "--console",
        `log:${dir}/a.log`,
        "--",
        GUEST,
      ],
      env,
    );
    procs.push(boot);
    await until(
      "two pings from the booted guest",
      async () => pings(await text(`${dir}/a.log`)).length >= 2,
    );
    const name = "net-1";
    const snap = await run(
      ["snapshot", "netA", "--name", name, "--disk-dir", `${dir}/points`, ...store],
      env,
    );
    assert.equal(snap.code, 0, snap.stderr);
    // The disk point waits for the requests before it, so their completions reach the guest
    // while it is held: usually none is left in flight (one would be resubmitted on restore).
    console.log(`block requests in flight in ${name}: ${await inflight(`${dir}/store`, name)}`);
    boot.kill("SIGTERM");
    await boot.output();
    const before = pings(await text(`${dir}/a.log`));

    const restore = vmesh(
      ["restore", name, "--name", "netB", "--console", `log:${dir}/b.log`, ...store],
      env,
    );
    procs.push(restore);
    await until(
      "five pings from the restored guest",
      async () => pings(await text(`${dir}/b.log`)).length >= 5,
    );
    const after = pings(await text(`${dir}/b.log`));
    const log = await text(`${dir}/b.log`);
    assert.doesNotMatch(log, /io error|Linux version/, log);
    // A ping in flight at the snapshot went to the old switch: at most that one is lost.
    assert.ok([...log.matchAll(/net \d+ down/g)].length <= 1, log);
    assert.ok(after[0][0] <= before.at(-1)![0] + 2, `restored at ${after[0][0]}`);
    for (let i = 1; i < after.length; i++) assert.ok(after[i][0] <= after[i - 1][0] + 2, log);
    assert.equal(after[0][1], before[0][1], "the same address as before the snapshot");
    restore.kill("SIGTERM");
    const r = await restore.output();
    assert.equal(r.code, 143, new TextDecoder().decode(r.stderr));
  } finally {
    for (const p of procs) {
      try {
        p.kill("SIGKILL");
      } catch { /* gone */ }
      await p.output().catch(() => {});
    }
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
