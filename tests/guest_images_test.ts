/**
 * The guest images boot under QEMU's virt board (the oracle): batch commands run and power
 * the VM off, the data disk reads back as built, and the interactive shell answers.
 * Builds the images on first use (several minutes); with a warm cache it only boots QEMU.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  ensureGuestImages,
  GUEST_PROMPT,
  GUEST_READY_MARKER,
  GUEST_SHELL_MARKER,
  type GuestImages,
  type GuestManifest,
  patternSectorHeader,
  qemuArgs,
  runQemuBatch,
} from "../guest/mod.ts";

let cached: Promise<GuestImages> | undefined;
function images(): Promise<GuestImages> {
  cached ??= ensureGuestImages();
  return cached;
}

async function manifest(img: GuestImages): Promise<GuestManifest> {
  return JSON.parse(await Deno.readTextFile(img.manifest));
}

Deno.test("guest images: cache entry holds every image and a manifest", async () => {
  const img = await images();
  for (const p of [img.kernel, img.initramfs, img.disk, img.firmware, img.manifest]) {
    assert.ok(p.startsWith("/"), p);
    assert.ok((await Deno.stat(p)).size > 0, p);
  }
  const m = await manifest(img);
  assert.equal(m.key, img.key);
  assert.ok(img.dir.endsWith(`/${img.key}`));
  assert.match(m.kernelVersion, /^6\.1\./);
  assert.ok(m.recipe.files["kernel.config"]);
  assert.ok(m.recipe.packages["linux-source-6.1"]);
  for (const [file, sum] of Object.entries(m.sha256)) {
    const bytes = await Deno.readFile(`${img.dir}/${file}`);
    assert.equal(createHash("sha256").update(bytes).digest("hex"), sum, file);
  }
  assert.deepEqual(Object.keys(m.sha256).sort(), [
    "Image",
    "data.ext4",
    "fw_jump.bin",
    "initramfs.cpio.gz",
  ]);
  // A second call with the cache warm returns the same entry without rebuilding.
  const again = await ensureGuestImages();
  assert.deepEqual(again, img);
  assert.equal((await manifest(again)).builtAt, m.builtAt);
});

Deno.test("guest images: QEMU batch run reads cpuinfo and the ext4 data disk, then powers off", async () => {
  const img = await images();
  const m = await manifest(img);
  const r = await runQemuBatch(
    img,
    "cat /proc/cpuinfo; mount /dev/vda /mnt && cat /mnt/README && sha256sum /mnt/pattern.bin" +
      " && dd if=/mnt/pattern.bin bs=512 skip=54321 count=1 2>/dev/null | head -c 29" +
      " && echo && uname -r",
  );
  assert.equal(r.qemuExit, 0, r.console);
  assert.equal(r.status, 0, r.console);
  const out = r.output ?? "";
  assert.match(out, /^processor\s+: 0$/m);
  assert.match(out, /^isa\s+: rv64imafdc/m);
  assert.ok(
    out.includes(await Deno.readTextFile(new URL("../guest/recipe/data/README", import.meta.url))),
  );
  assert.ok(out.includes(`${m.data.pattern.sha256}  /mnt/pattern.bin`), out);
  assert.ok(out.includes(patternSectorHeader(54321)), out);
  assert.match(out, new RegExp(`^${m.kernelVersion.replaceAll(".", "\\.")}$`, "m"));
  assert.ok(r.console.indexOf(GUEST_READY_MARKER) >= 0);
});

Deno.test("guest images: batch mode reports the exit status and passes quotes through", async () => {
  const img = await images();
  const failing = await runQemuBatch(img, "echo about to fail; exit 7", {
    disk: false,
    net: false,
  });
  assert.equal(failing.qemuExit, 0, failing.console);
  assert.equal(failing.status, 7);
  assert.equal(failing.output, "about to fail\n");
  const quoted = await runQemuBatch(img, `printf '%s|%s\\n' "a  b" 'c"d'`, { disk: false });
  assert.equal(quoted.qemuExit, 0, quoted.console);
  assert.equal(quoted.output, 'a  b|c"d\n');
  assert.equal(quoted.status, 0);
});

Deno.test("guest images: virtio-net gets a DHCP lease, virtio-rng feeds /dev/hwrng", async () => {
  const img = await images();
  const r = await runQemuBatch(
    img,
    "udhcpc -i eth0 -n -q >/dev/null && ip -4 addr show eth0 && ip route && cat /etc/resolv.conf" +
      " && cat /sys/class/misc/hw_random/rng_current && head -c 4096 /dev/hwrng | wc -c",
    { disk: false, extra: ["-device", "virtio-rng-device"] },
  );
  assert.equal(r.qemuExit, 0, r.console);
  assert.equal(r.status, 0, r.console);
  const out = r.output ?? "";
  assert.match(out, /inet 10\.0\.2\.15\/24 /);
  assert.match(out, /^default via 10\.0\.2\.2 dev eth0/m);
  assert.match(out, /^nameserver 10\.0\.2\.3$/m);
  assert.match(out, /^virtio_rng\.\d+$/m);
  assert.match(out, /^4096$/m);
});

Deno.test("guest images: interactive shell on the serial console answers and powers off", async () => {
  const img = await images();
  const child = new Deno.Command("qemu-system-riscv64", {
    args: qemuArgs(img, { append: "quiet" }),
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.getReader();
  const dec = new TextDecoder();
  let text = "";
  const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const waitFor = async (needle: string, from: number): Promise<number> => {
    for (;;) {
      const at = text.indexOf(needle, from);
      if (at >= 0) return at + needle.length;
      const { value, done } = await reader.read();
      if (done) throw new Error(`console ended before '${needle}':\n${text}`);
      text += dec.decode(value, { stream: true });
    }
  };
  try {
    let at = await waitFor(GUEST_SHELL_MARKER, 0);
    at = await waitFor(GUEST_PROMPT, at);
    await writer.write(new TextEncoder().encode("echo answer=$((6*7))\n"));
    at = await waitFor("answer=42", at);
    at = await waitFor(GUEST_PROMPT, at);
    await writer.write(new TextEncoder().encode("poweroff -f\n"));
    await writer.close();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    const status = await child.status;
    assert.equal(status.code, 0, text);
  } finally {
    clearTimeout(killer);
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await writer.close().catch(() => {});
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    await child.status;
  }
});
