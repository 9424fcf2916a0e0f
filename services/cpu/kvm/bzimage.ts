/**
 * The bzImage parser for the Linux x86 boot protocol (Documentation/arch/x86/boot.rst): the
 * setup header at 0x1f1, the protected-mode kernel after the setup sectors, 64-bit entry.
 */

/** A parsed bzImage. */
export interface BzImage {
  /** Boot protocol version, e.g. 0x20f. */
  protocol: number;
  /** The setup header bytes (0x1f1 up to the end of the header) to copy into the zero page. */
  setupHeader: Uint8Array;
  /** The protected-mode kernel, loaded at 1 MiB. */
  kernel: Uint8Array;
  /** Highest address the initrd may end at (initrd_addr_max). */
  initrdAddrMax: number;
}

/** Offset of the setup header in the image and in the zero page. */
export const SETUP_HEADER_OFFSET = 0x1f1;

/** Parses `image`; throws a clear error for anything that is not a 64-bit-capable bzImage. */
export function parseBzImage(image: Uint8Array): BzImage {
  const v = new DataView(image.buffer, image.byteOffset, image.byteLength);
  if (image.length < 0x300) {
    throw new Error(`kernel image is ${image.length} bytes: too small for a bzImage`);
  }
  if (v.getUint32(0x202, true) !== 0x53726448) {
    const magic = v.getUint32(0, false);
    const hint = magic === 0x7f454c46
      ? "an ELF vmlinux (load it with parseVmlinux)"
      : image[0] === 0x1f && image[1] === 0x8b
      ? "a gzip file (decompress it, or pass the bzImage)"
      : v.getUint32(0x38, true) === 0x644d5241
      ? "an arm64/RISC-V Image"
      : 'not a Linux x86 bzImage (no "HdrS" at 0x202)';
    throw new Error(`unknown kernel format: ${hint}`);
  }
  const protocol = v.getUint16(0x206, true);
  if (protocol < 0x20c) {
    throw new Error(
      `bzImage boot protocol ${protocol.toString(16)} is older than 2.12 (no 64-bit entry)`,
    );
  }
  const xloadflags = v.getUint16(0x236, true);
  if (!(xloadflags & 1)) throw new Error("bzImage has no 64-bit entry point (XLF_KERNEL_64 clear)");
  const setupSects = image[0x1f1] || 4;
  const kernelStart = (setupSects + 1) * 512;
  if (kernelStart >= image.length) throw new Error("bzImage truncated: no protected-mode kernel");
  // The header ends where the 0x200 jump points: 0x202 + the jump's byte offset.
  const headerEnd = 0x202 + image[0x201];
  return {
    protocol,
    setupHeader: image.slice(SETUP_HEADER_OFFSET, headerEnd),
    kernel: image.subarray(kernelStart),
    initrdAddrMax: v.getUint32(0x22c, true),
  };
}
