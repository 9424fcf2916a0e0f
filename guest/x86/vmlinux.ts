/**
 * Extracts the ELF vmlinux from a bzImage on the host: the compressed payload named by the setup
 * header (payload_offset/payload_length), decompressed with the matching Debian tool. Booting
 * the ELF skips the bzImage decompressor, which is the slowest part of a boot when the host's
 * KVM emulates guest supervisor code instruction by instruction (see services/cpu/kvm/README.md).
 */

/** Decompressors by payload magic: the tool, its arguments and the Debian package it is in. */
const DECOMPRESSORS: { magic: number[]; cmd: string; args: string[]; pkg: string }[] = [
  {
    magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    cmd: "xz",
    args: ["-dc", "--single-stream"],
    pkg: "xz-utils",
  },
  { magic: [0x1f, 0x8b], cmd: "gzip", args: ["-dc"], pkg: "gzip" },
  { magic: [0x28, 0xb5, 0x2f, 0xfd], cmd: "zstd", args: ["-dc"], pkg: "zstd" },
];

/** The compressed payload of a bzImage (the bytes after the setup sectors it names). */
export function bzImagePayload(bz: Uint8Array): Uint8Array {
  const v = new DataView(bz.buffer, bz.byteOffset, bz.byteLength);
  if (bz.length < 0x250 || v.getUint32(0x202, true) !== 0x53726448) {
    throw new Error('not a bzImage (no "HdrS" at 0x202)');
  }
  if (v.getUint16(0x206, true) < 0x208) {
    throw new Error("bzImage protocol < 2.08: no payload fields");
  }
  const start = ((bz[0x1f1] || 4) + 1) * 512 + v.getUint32(0x248, true);
  const end = start + v.getUint32(0x24c, true);
  if (end > bz.length) throw new Error("bzImage truncated: payload ends past the file");
  return bz.subarray(start, end);
}

/**
 * Decompresses the bzImage's payload into an ELF vmlinux.
 *
 * @example
 * ```ts
 * const elf = await extractVmlinux(await Deno.readFile("/boot/vmlinuz"));
 * await Deno.writeFile("vmlinux", elf);
 * ```
 */
export async function extractVmlinux(bz: Uint8Array): Promise<Uint8Array> {
  const payload = bzImagePayload(bz);
  const d = DECOMPRESSORS.find((d) => d.magic.every((b, i) => payload[i] === b));
  if (!d) {
    const head = [...payload.subarray(0, 4)].map((b) => b.toString(16).padStart(2, "0")).join("");
    throw new Error(`bzImage payload compressed with an unknown method (magic ${head})`);
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(d.cmd, {
      args: d.args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    })
      .spawn();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`${d.cmd} not found: install the Debian package ${d.pkg}`);
    }
    throw err;
  }
  const writer = child.stdin.getWriter();
  const [out] = await Promise.all([
    child.output(),
    writer.write(payload).then(() => writer.close()),
  ]);
  if (!out.success) {
    throw new Error(
      `${d.cmd} ${d.args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  const elf = out.stdout;
  if (elf[0] !== 0x7f || elf[1] !== 0x45 || elf[2] !== 0x4c || elf[3] !== 0x46) {
    throw new Error("bzImage payload did not decompress to an ELF vmlinux");
  }
  return elf;
}
