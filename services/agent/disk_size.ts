/**
 * The size a guest sees of a disk image, in MiB (rounded up): a qcow2 image's virtual size
 * from its header, else a raw image's file size. A VM's copy-on-write overlay never grows
 * past it, so it bounds the host disk the VM can take.
 * @module
 */

const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

/**
 * The guest-visible size of image `path` in MiB.
 *
 * @example
 * ```ts
 * const mib = await diskImageMib("/var/lib/vmesh/data.ext4");
 * ```
 */
export async function diskImageMib(path: string): Promise<number> {
  const f = await Deno.open(path, { read: true });
  try {
    const head = new Uint8Array(32);
    const n = await f.read(head);
    const view = new DataView(head.buffer);
    const bytes = n === 32 && view.getUint32(0) === QCOW2_MAGIC
      ? Number(view.getBigUint64(24))
      : (await f.stat()).size;
    return Math.ceil(bytes / (1024 * 1024));
  } finally {
    f.close();
  }
}
