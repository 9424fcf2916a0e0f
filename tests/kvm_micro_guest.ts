/**
 * Tiny x86-64 guests for the KVM tests: a bzImage whose "64-bit entry" (protected-mode code
 * + 0x200) is a few hand-assembled instructions, so a test runs real guest code on /dev/kvm
 * through the same boot path as Linux in milliseconds.
 */

/** Guest-physical address of the micro-guest's first instruction (1 MiB + 0x200). */
export const MICRO_ENTRY = 0x100200;

/**
 * Wraps 64-bit machine code as a minimal bzImage (protocol 2.15, XLF_KERNEL_64); `data` places
 * more bytes at offsets from the entry (guest-physical MICRO_ENTRY + offset).
 */
export function microBzImage(
  code: number[],
  data: { offset: number; bytes: number[] }[] = [],
): Uint8Array {
  const setupSects = 1, entry = (setupSects + 1) * 512 + 0x200;
  const end = Math.max(code.length, ...data.map((d) => d.offset + d.bytes.length));
  const img = new Uint8Array(entry + end);
  const v = new DataView(img.buffer);
  img[0x1f1] = setupSects;
  img[0x201] = 0x6a; // the jump at 0x200 skips the header up to 0x26c
  v.setUint32(0x202, 0x53726448, true); // "HdrS"
  v.setUint16(0x206, 0x20f, true);
  v.setUint32(0x22c, 0x7fffffff, true); // initrd_addr_max
  v.setUint16(0x236, 1, true); // xloadflags: XLF_KERNEL_64
  img.set(code, entry);
  for (const d of data) img.set(d.bytes, entry + d.offset);
  return img;
}

/**
 * Prints `text` on COM1 (polling LSR.THRE before each byte, as Linux's early console does),
 * then pulses the i8042 reset line.
 */
export function uartHelloGuest(text: string): Uint8Array {
  const code = [
    0x48,
    0x8d,
    0x35,
    30,
    0,
    0,
    0, //     lea rsi, [rip + msg]
    0x66,
    0xba,
    0xfd,
    0x03, //            mov dx, 0x3fd (LSR)
    0xec, //                       wait:  in al, dx
    0xa8,
    0x20, //                        test al, 0x20 (THRE)
    0x74,
    0xfb, //                        jz wait
    0xac, //                              lodsb
    0x84,
    0xc0, //                        test al, al
    0x74,
    0x0b, //                        jz done
    0x66,
    0xba,
    0xf8,
    0x03, //            mov dx, 0x3f8 (THR)
    0xee, //                              out dx, al
    0x66,
    0xba,
    0xfd,
    0x03, //            mov dx, 0x3fd
    0xeb,
    0xeb, //                        jmp wait
    0xb0,
    0xfe, //                 done:  mov al, 0xfe
    0xe6,
    0x64, //                        out 0x64, al (i8042: pulse reset)
    0xf4, //                              hlt
    ...new TextEncoder().encode(text),
    0,
  ];
  return microBzImage(code);
}

/** Executes ud2 with the boot IDT empty: #UD, then #DF, then a triple fault. */
export function tripleFaultGuest(): Uint8Array {
  return microBzImage([0x0f, 0x0b]);
}

/**
 * Loads an IDT whose vector 3 handler prints "B" and returns (iretq), executes int3, then prints
 * "A" and resets: "BA" on the console means the #BP was delivered and returned past the int3.
 */
export function int3Guest(): Uint8Array {
  const idt = MICRO_ENTRY + 0xe00, idtr = MICRO_ENTRY + 0xf00, handler = MICRO_ENTRY + 0x200;
  const le32 = (x: number) => [x & 0xff, (x >> 8) & 0xff, (x >> 16) & 0xff, (x >>> 24) & 0xff];
  const gate = [
    handler & 0xff,
    (handler >> 8) & 0xff,
    0x08,
    0,
    0,
    0x8e,
    ...le32(handler >>> 16).slice(0, 2),
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
  ];
  return microBzImage([
    0x0f,
    0x01,
    0x1c,
    0x25,
    ...le32(idtr), // lidt [idtr]
    0xcc, //                                  int3
    0x66,
    0xba,
    0xf8,
    0x03,
    0xb0,
    0x41,
    0xee, // print "A"
    0xb0,
    0xfe,
    0xe6,
    0x64,
    0xf4, //          i8042 reset
  ], [
    { offset: 0x200, bytes: [0x66, 0xba, 0xf8, 0x03, 0xb0, 0x42, 0xee, 0x48, 0xcf] }, // "B"; iretq
    { offset: idt - MICRO_ENTRY + 3 * 16, bytes: gate },
    { offset: idtr - MICRO_ENTRY, bytes: [0xff, 0x0f, ...le32(idt), 0, 0, 0, 0] },
  ]);
}

/** fwait, then "A" and a reset (KVM's emulator refuses fwait: it is stepped over on PVM). */
export function fwaitGuest(): Uint8Array {
  return microBzImage([
    0x9b,
    0x66,
    0xba,
    0xf8,
    0x03,
    0xb0,
    0x41,
    0xee,
    0xb0,
    0xfe,
    0xe6,
    0x64,
    0xf4,
  ]);
}
