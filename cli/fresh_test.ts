import assert from "node:assert/strict";
import { bootFigures, mirrorFrom, parseFreshArgs } from "./fresh.ts";
import { mountsUnder } from "./chroot_mounts.ts";

Deno.test("fresh: the mirror comes from the URIs: line of the deb822 sources", () => {
  const deb822 =
    "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n" +
    "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n" +
    "Suites: bookworm-security\nComponents: main\n";
  assert.equal(
    mirrorFrom([["/etc/apt/sources.list.d/debian.sources", deb822]]),
    "http://mirror.example/debian",
  );
  assert.equal(
    mirrorFrom([["/etc/apt/sources.list", "deb http://old.example/debian bookworm main\n"]]),
    "http://old.example/debian",
  );
  assert.equal(mirrorFrom([["/etc/apt/sources.list", "# nothing\n"]]), undefined);
});

Deno.test("fresh: arguments", () => {
  assert.deepEqual(parseFreshArgs([]), {
    keep: false,
    keepRoot: false,
    dir: "/var/tmp/vmesh-fresh",
    skipTest: false,
    help: false,
  });
  assert.equal(parseFreshArgs(["--dir", "/x/y", "--keep"]).dir, "/x/y");
  assert.throws(() => parseFreshArgs(["--dir", "/"]), /absolute path/);
  assert.throws(() => parseFreshArgs(["--nope"]), /unknown argument/);
});

Deno.test("chroot mounts: everything under the root, deepest first, escapes decoded", () => {
  const info = [
    "22 1 0:21 / / rw - ext4 /dev/vda rw",
    "40 22 0:5 / /r/proc rw - proc proc rw",
    "41 22 0:6 / /r/dev rw - devtmpfs udev rw",
    "42 41 0:7 / /r/dev/pts rw - devpts devpts rw",
    "43 22 0:8 / /r/run/netns/a\\040b rw - nsfs nsfs rw",
    "44 22 0:9 / /rx/proc rw - proc proc rw",
  ].join("\n");
  assert.deepEqual(mountsUnder(info, "/r/"), [
    "/r/run/netns/a b",
    "/r/dev/pts",
    "/r/proc",
    "/r/dev",
  ]);
});

Deno.test("fresh: the first boot's own timings are picked from its output", () => {
  const out = [
    "vmesh: installing Deno 2.9.6 from the npm registry into .vmesh/deno",
    "vmesh: installed Deno 2.9.6 in 6 s",
    "vmesh: installed 22 Debian packages in 128 s",
    "vmesh guest: data disk done in 1s",
    "vmesh guest:   kernel: make Image: 400 files (2m00s)",
    "vmesh guest: kernel done in 5m51s",
    "vmesh guest: busybox done in 1m09s",
    "vmesh guest: guest images ready in 7m14s: /root/vmesh/.vmesh/guest/726840b7fdff1633",
    "Linux vmesh 6.1.192 #1 SMP riscv64 GNU/Linux",
  ].join("\n");
  assert.deepEqual(bootFigures(out), [
    "installed Deno 2.9.6 in 6 s",
    "installed 22 Debian packages in 128 s",
    "data disk done in 1s",
    "kernel done in 5m51s",
    "busybox done in 1m09s",
    "guest images ready in 7m14s",
  ]);
});
