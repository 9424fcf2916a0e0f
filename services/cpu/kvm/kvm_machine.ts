/**
 * An x86-64 KVM virtual machine with one vCPU: guest RAM from mmap registered with
 * KVM_SET_USER_MEMORY_REGION, in-kernel irqchip and PIT, CPUID from KVM_GET_SUPPORTED_CPUID,
 * the project's 16550 UART on port 0x3f8 (IRQ 4) and an i8042 whose reset command ends the VM.
 * KVM_RUN is a nonblocking FFI call (a libffi worker thread), so the event loop keeps serving
 * console input while the guest runs or idles inside the kernel.
 */
import { Uart16550 } from "../devices/uart16550.ts";
import {
  CAP,
  EXIT,
  EXIT_NAME,
  IO_OUT,
  KVM,
  KVM_API_VERSION,
  REGS,
  RUN,
  SIZE,
  SREGS,
} from "./kvm_api.ts";
import {
  cString,
  errno,
  errnoText,
  libc,
  MAP_SHARED,
  O_CLOEXEC,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from "./libc.ts";
import { parseBzImage } from "./bzimage.ts";
import { isElf, parseVmlinux } from "./elf_vmlinux.ts";
import { EMULATOR_HIDDEN_FEATURES, hideFeatures } from "./cpuid_emulator_quirks.ts";
import { kvmBackend } from "./host_kvm.ts";
import { GDT, type KernelImage, LAYOUT, writeBootLayout } from "./x86_boot.ts";
import { SlowPit } from "./slow_pit.ts";
import { GuestMemory, MAX_RAM_BYTES, RAM_OFFSET } from "../guest_memory.ts";
import { type VirtioDevice, VirtioMmioTransport } from "../virtio/mod.ts";
import { VIRTIO_MMIO_IRQS, VIRTIO_MMIO_SIZE, virtioMmioBase } from "./virtio_mmio_x86.ts";

/** The PIT slowdown on a PVM host (see slow_pit.ts). */
export const PVM_PIT_SLOWDOWN = 10;

/** What the machine needs to boot. */
export interface KvmMachineOptions {
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  /** Guest RAM in bytes (64 MiB up to MAX_RAM_BYTES, below the virtio-mmio windows). */
  memoryBytes: number;
  /**
   * Virtio devices, one virtio-mmio window each at virtioMmioBase(i) with IRQ
   * VIRTIO_MMIO_IRQS[i]; the command line must describe them (virtioMmioCmdline).
   */
  virtio?: VirtioDevice[];
  /** Called with console output bytes. */
  onConsole(bytes: Uint8Array): void;
  /**
   * Hide the CPUID features KVM's instruction emulator cannot run (default: on a PVM host,
   * where guest supervisor code is emulated).
   */
  hideFromEmulator?: boolean;
  /** /dev/kvm path (tests). */
  device?: string;
  /**
   * Replace KVM's in-kernel PIT with {@link SlowPit}, its tick this many times slower (default:
   * 10 on a PVM host, where the emulated tick would take all the vCPU's time; else the
   * in-kernel PIT).
   */
  pitSlowdown?: number;
}

/** How the VM ended. */
export interface KvmExit {
  /** "reset" (i8042 reset/reboot: the guest's way to power off here) or "error". */
  kind: "reset" | "error";
  message: string;
  /** Guest RIP when it stopped (error cases). */
  rip?: number;
}

/** A VM-fatal condition: ends this VM with a message, never the process. */
export class KvmError extends Error {}

const COM1 = 0x3f8, COM1_IRQ = 4, I8042_DATA = 0x60, I8042_CMD = 0x64;

function check(rc: number, what: string): number {
  if (rc < 0) throw new KvmError(`${what} failed: ${errnoText(errno())}`);
  return rc;
}

/** Opens /dev/kvm and checks the API: clear errors for absent, forbidden or old. */
export function openKvm(device = "/dev/kvm"): number {
  const c = libc();
  const fd = c.open(cString(device), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const e = errno();
    if (e === 2) {
      throw new KvmError(
        `${device} does not exist: this host has no KVM (load kvm_intel/kvm_amd, or enable nested virtualization)`,
      );
    }
    if (e === 13 || e === 1) {
      throw new KvmError(
        `${device}: permission denied: add your user to the 'kvm' group or run as root`,
      );
    }
    throw new KvmError(`open ${device}: ${errnoText(e)}`);
  }
  const version = c.ioctl(fd, KVM.GET_API_VERSION, BigInt(0));
  if (version !== KVM_API_VERSION) {
    c.close(fd);
    throw new KvmError(
      `${device} speaks KVM API ${version}, this engine needs ${KVM_API_VERSION}: the host kernel is too old`,
    );
  }
  for (const [name, cap] of Object.entries(CAP)) {
    if (name === "IMMEDIATE_EXIT") continue;
    if (c.ioctl(fd, KVM.CHECK_EXTENSION, BigInt(cap)) <= 0) {
      c.close(fd);
      throw new KvmError(`${device} lacks KVM_CAP_${name}: the host kernel is too old`);
    }
  }
  return fd;
}

/** One x86-64 KVM VM with one vCPU. */
export class KvmMachine {
  readonly #c = libc();
  readonly #kvm: number;
  readonly #vm: number;
  readonly #vcpu: number;
  readonly #run: Deno.UnsafePointerView;
  readonly #runPtr: Deno.PointerObject;
  /** Size of the kvm_run mapping: the struct, then the port I/O data page at 4096. */
  readonly #runSize: number;
  /** Guest RAM: a GuestMemory at guest physical 0, registered with KVM (shared with devices). */
  readonly memory: GuestMemory;
  /** Guest RAM bytes (a view into `memory`). */
  readonly ram: Uint8Array;
  /** The virtio-mmio transports, in window order. */
  readonly virtio: VirtioMmioTransport[] = [];
  readonly uart: Uart16550;
  /** The user-space PIT, when it replaces KVM's (see {@link KvmMachineOptions.pitSlowdown}). */
  readonly pit: SlowPit | undefined;
  #txBuf: number[] = [];
  #stopped: KvmExit | undefined;
  /** KVM exits handled, by reason name (diagnostics and tests). */
  readonly exits = new Map<string, number>();
  /** Port accesses to no device (read as 0xff, writes dropped, like an open ISA bus). */
  unclaimedPortAccesses = 0;

  constructor(private readonly opts: KvmMachineOptions) {
    // Parsed before any KVM resource: a bad image is a plain error.
    const kernel: KernelImage = isElf(opts.kernel)
      ? { format: "elf", elf: parseVmlinux(opts.kernel) }
      : { format: "bzImage", bz: parseBzImage(opts.kernel) };
    if (opts.memoryBytes < 64 << 20 || opts.memoryBytes > MAX_RAM_BYTES) {
      throw new KvmError(
        `KVM guest memory must be 64 MiB..${
          MAX_RAM_BYTES >> 20
        } MiB, got ${opts.memoryBytes} bytes`,
      );
    }
    if ((opts.virtio?.length ?? 0) > VIRTIO_MMIO_IRQS.length) {
      throw new KvmError(`at most ${VIRTIO_MMIO_IRQS.length} virtio devices`);
    }
    const c = this.#c;
    this.#kvm = openKvm(opts.device);
    this.#vm = check(c.ioctl(this.#kvm, KVM.CREATE_VM, BigInt(0)), "KVM_CREATE_VM");
    check(c.ioctl(this.#vm, KVM.SET_TSS_ADDR, BigInt(0xfffbd000)), "KVM_SET_TSS_ADDR");
    const idmap = new BigUint64Array([0xfffbc000n]);
    check(
      c.ioctl_ptr(this.#vm, KVM.SET_IDENTITY_MAP_ADDR, Deno.UnsafePointer.of(idmap)),
      "KVM_SET_IDENTITY_MAP_ADDR",
    );
    check(c.ioctl(this.#vm, KVM.CREATE_IRQCHIP, BigInt(0)), "KVM_CREATE_IRQCHIP");
    const slowdown = opts.pitSlowdown ??
      (kvmBackend() === "pvm" ? PVM_PIT_SLOWDOWN : undefined);
    if (slowdown === undefined) {
      const pit = new Uint8Array(SIZE.pitConfig);
      check(
        c.ioctl_ptr(this.#vm, KVM.CREATE_PIT2, Deno.UnsafePointer.of(pit)),
        "KVM_CREATE_PIT2",
      );
    } else {
      // An edge on IRQ 0 (PIC input 0, IOAPIC pin 2 through KVM's default routing).
      this.pit = new SlowPit(slowdown, () => {
        this.#irqLine(0, true);
        this.#irqLine(0, false);
      });
    }
    // Guest RAM: the device models' GuestMemory, its RAM bytes at guest physical 0.
    this.memory = new GuestMemory(opts.memoryBytes, undefined, undefined, 0);
    this.ram = this.memory.ram();
    const ramHost = Deno.UnsafePointer.value(Deno.UnsafePointer.of(this.memory.u8)) +
      BigInt(RAM_OFFSET);
    const region = new BigUint64Array([0n, 0n, BigInt(opts.memoryBytes), ramHost]);
    check(
      c.ioctl_ptr(this.#vm, KVM.SET_USER_MEMORY_REGION, Deno.UnsafePointer.of(region)),
      "KVM_SET_USER_MEMORY_REGION",
    );
    // vCPU and its kvm_run page.
    this.#vcpu = check(c.ioctl(this.#vm, KVM.CREATE_VCPU, BigInt(0)), "KVM_CREATE_VCPU");
    const runSize = check(
      c.ioctl(this.#kvm, KVM.GET_VCPU_MMAP_SIZE, BigInt(0)),
      "KVM_GET_VCPU_MMAP_SIZE",
    );
    const runPtr = c.mmap(
      null,
      BigInt(runSize),
      PROT_READ | PROT_WRITE,
      MAP_SHARED,
      this.#vcpu,
      0n,
    );
    if (!runPtr || Deno.UnsafePointer.value(runPtr) === 0xffffffffffffffffn) {
      throw new KvmError(`mmap of kvm_run failed: ${errnoText(errno())}`);
    }
    this.#runPtr = runPtr;
    this.#runSize = runSize;
    this.#run = new Deno.UnsafePointerView(runPtr);
    this.#setCpuid();
    const entry = writeBootLayout(this.ram, kernel, opts.cmdline, opts.initrd);
    this.#setSregs();
    this.#setFpu();
    const regs = new BigUint64Array(SIZE.regs / 8);
    regs[REGS.rip / 8] = BigInt(entry.rip);
    regs[REGS.rsp / 8] = BigInt(entry.rsp);
    regs[REGS.rbp / 8] = BigInt(entry.rsp);
    regs[REGS.rsi / 8] = BigInt(entry.rsi);
    regs[REGS.rflags / 8] = 2n;
    check(c.ioctl_ptr(this.#vcpu, KVM.SET_REGS, Deno.UnsafePointer.of(regs)), "KVM_SET_REGS");
    (opts.virtio ?? []).forEach((device, i) => {
      const irq = VIRTIO_MMIO_IRQS[i];
      this.virtio.push(
        new VirtioMmioTransport(
          this.memory,
          device,
          (level) => this.#irqLine(irq, level),
          `virtio_mmio@${virtioMmioBase(i).toString(16)}`,
        ),
      );
    });
    this.uart = new Uart16550({
      onTransmit: (b) => this.#txBuf.push(b),
      setIrq: (level) => this.#irqLine(COM1_IRQ, level),
    });
  }

  #setCpuid(): void {
    const c = this.#c;
    const max = 256;
    const buf = new Uint8Array(8 + max * SIZE.cpuidEntry2);
    const v = new DataView(buf.buffer);
    v.setUint32(0, max, true);
    check(
      c.ioctl_ptr(this.#kvm, KVM.GET_SUPPORTED_CPUID, Deno.UnsafePointer.of(buf)),
      "KVM_GET_SUPPORTED_CPUID",
    );
    const n = v.getUint32(0, true);
    for (let i = 0; i < n; i++) {
      const o = 8 + i * SIZE.cpuidEntry2;
      const fn = v.getUint32(o, true);
      if (fn === 1) {
        // ecx bit 31: running under a hypervisor; ebx[31:24] initial APIC id 0, one logical CPU.
        v.setUint32(o + 20, v.getUint32(o + 20, true) | 0x8000_0000, true);
        v.setUint32(o + 16, (v.getUint32(o + 16, true) & 0x0000ffff) | (1 << 16), true);
      }
    }
    if (this.opts.hideFromEmulator ?? kvmBackend() === "pvm") {
      hideFeatures(v, EMULATOR_HIDDEN_FEATURES);
    }
    check(c.ioctl_ptr(this.#vcpu, KVM.SET_CPUID2, Deno.UnsafePointer.of(buf)), "KVM_SET_CPUID2");
  }

  #setSregs(): void {
    const c = this.#c;
    const buf = new Uint8Array(SIZE.sregs);
    check(c.ioctl_ptr(this.#vcpu, KVM.GET_SREGS, Deno.UnsafePointer.of(buf)), "KVM_GET_SREGS");
    const v = new DataView(buf.buffer);
    const seg = (off: number, entry: bigint, selector: number) => {
      const flags = Number((entry >> 40n) & 0xf0ffn);
      v.setBigUint64(off, 0n, true); // base
      v.setUint32(off + 8, 0xffffffff, true); // limit (granularity 4 KiB)
      v.setUint16(off + 12, selector, true);
      buf[off + 14] = flags & 0xf; // type
      buf[off + 15] = (flags >> 7) & 1; // present
      buf[off + 16] = (flags >> 5) & 3; // dpl
      buf[off + 17] = (flags >> 14) & 1; // db
      buf[off + 18] = (flags >> 4) & 1; // s
      buf[off + 19] = (flags >> 13) & 1; // l
      buf[off + 20] = (flags >> 15) & 1; // g
      buf[off + 21] = 0; // avl
      buf[off + 22] = 0; // unusable
    };
    seg(SREGS.cs, GDT[1], 0x08);
    for (const s of [SREGS.ds, SREGS.es, SREGS.fs, SREGS.gs, SREGS.ss]) seg(s, GDT[2], 0x10);
    seg(SREGS.tr, GDT[3], 0x18);
    v.setBigUint64(SREGS.gdt, BigInt(LAYOUT.gdt), true);
    v.setUint16(SREGS.gdt + 8, GDT.length * 8 - 1, true);
    v.setBigUint64(SREGS.idt, BigInt(LAYOUT.idt), true);
    v.setUint16(SREGS.idt + 8, 7, true);
    v.setBigUint64(SREGS.cr0, 0x80000011n, true); // PG | ET | PE
    v.setBigUint64(SREGS.cr3, BigInt(LAYOUT.pml4), true);
    v.setBigUint64(SREGS.cr4, 0x20n, true); // PAE
    v.setBigUint64(SREGS.efer, 0x500n, true); // LME | LMA
    check(c.ioctl_ptr(this.#vcpu, KVM.SET_SREGS, Deno.UnsafePointer.of(buf)), "KVM_SET_SREGS");
  }

  #setFpu(): void {
    const buf = new Uint8Array(SIZE.fpu);
    const v = new DataView(buf.buffer);
    v.setUint16(128, 0x37f, true); // fcw
    v.setUint32(408, 0x1f80, true); // mxcsr
    check(this.#c.ioctl_ptr(this.#vcpu, KVM.SET_FPU, Deno.UnsafePointer.of(buf)), "KVM_SET_FPU");
  }

  #irqLine(irq: number, level: boolean): void {
    const b = new Uint32Array([irq, level ? 1 : 0]);
    this.#c.ioctl_ptr(this.#vm, KVM.IRQ_LINE, Deno.UnsafePointer.of(b));
  }

  /** Offers console input to the UART; returns how many bytes it took. */
  input(bytes: Uint8Array): number {
    return this.uart.receive(bytes);
  }

  /** Ends the VM from outside (the next KVM exit returns). */
  stop(message = "stopped"): void {
    this.#stopped ??= { kind: "reset", message };
    this.#run.getUint8(0); // keep the view alive
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(this.#runPtr, 8))[RUN.immediateExit] = 1;
  }

  /** Runs the vCPU until the guest resets, fails, or stop() is called. */
  async run(): Promise<KvmExit> {
    const c = this.#c;
    const runBytes = new Uint8Array(
      Deno.UnsafePointerView.getArrayBuffer(this.#runPtr, this.#runSize),
    );
    const rv = new DataView(runBytes.buffer);
    try {
      while (!this.#stopped) {
        const rc = await c.ioctl_run(this.#vcpu, KVM.RUN, BigInt(0));
        if (rc < 0) {
          // stop() set immediate_exit: KVM_RUN answers EINTR at once.
          if (this.#stopped && runBytes[RUN.immediateExit]) continue;
          // errno belongs to the libffi worker thread that made the call, not to this one.
          throw new KvmError(
            "KVM_RUN failed (its errno stays on the FFI worker thread; run it under strace -f -e ioctl to see it)",
          );
        }
        const reason = rv.getUint32(RUN.exitReason, true);
        const name = EXIT_NAME[reason] ?? `exit ${reason}`;
        this.exits.set(name, (this.exits.get(name) ?? 0) + 1);
        switch (reason) {
          case EXIT.IO:
            this.#portIo(runBytes, rv);
            break;
          case EXIT.HLT:
            throw new KvmError("guest halted with interrupts off (KVM_EXIT_HLT)");
          case EXIT.SHUTDOWN:
            throw new KvmError("guest triple fault (KVM_EXIT_SHUTDOWN)");
          case EXIT.MMIO:
            this.#mmio(runBytes, rv);
            break;
          case EXIT.FAIL_ENTRY:
            throw new KvmError(
              `KVM entry failed (hardware reason 0x${
                rv.getBigUint64(RUN.union, true).toString(16)
              })`,
            );
          case EXIT.INTERNAL_ERROR: {
            // internal.suberror, ndata, data[ndata]: 1 is KVM_INTERNAL_ERROR_EMULATION.
            const sub = rv.getUint32(RUN.union, true);
            const nd = Math.min(rv.getUint32(RUN.union + 4, true), 16);
            const data = Array.from(
              { length: nd },
              (_, i) => "0x" + rv.getBigUint64(RUN.union + 8 + 8 * i, true).toString(16),
            );
            let what = `suberror ${sub}${nd ? ` (data ${data.join(" ")})` : ""}`;
            if (sub === 1) {
              // emulation_failure: flags (bit 0: instruction bytes valid), insn_size, insn_bytes.
              const hasBytes = nd >= 3 && (rv.getBigUint64(RUN.union + 8, true) & 1n) === 1n;
              const size = hasBytes ? Math.min(runBytes[RUN.union + 16], 15) : 0;
              const bytes = [...runBytes.subarray(RUN.union + 17, RUN.union + 17 + size)]
                .map((b) => b.toString(16).padStart(2, "0")).join(" ");
              what = `KVM's instruction emulator failed${size ? ` on bytes ${bytes}` : ""}`;
              const insn = runBytes.slice(RUN.union + 17, RUN.union + 17 + size);
              // int3: deliver #BP; fwait: nothing to wait for (no x87 exception is ever left
              // pending with FXSAVE and masked exceptions), so step over it.
              const op = insn[0];
              if (
                size >= 8 && (op === 0xcc || op === 0x9b) && this.#steps < 4096 &&
                this.#stepOver(insn, op === 0xcc ? 3 : undefined)
              ) {
                this.#steps++;
                break;
              }
            }
            throw new KvmError(`KVM internal error: ${what}; ${this.#cpuState()}`);
          }
          case EXIT.SYSTEM_EVENT:
            this.#stopped = {
              kind: "reset",
              message: `guest system event ${rv.getUint32(RUN.union, true)}`,
            };
            break;
          case EXIT.INTR:
            break;
          default:
            throw new KvmError(`unexpected ${name}`);
        }
        this.#flushConsole();
      }
      this.#flushConsole();
      return this.#stopped;
    } catch (err) {
      this.#flushConsole();
      if (!(err instanceof KvmError)) throw err;
      return { kind: "error", message: err.message, rip: this.#rip() };
    }
  }

  /** Instructions stepped over for the emulator (#stepOver). */
  #steps = 0;

  /**
   * Steps over a one-byte instruction the emulator refused (int3, fwait): finds its bytes near
   * the rip KVM_GET_REGS reports (PVM reports a nearby page-aligned rip), sets rip past it and,
   * for int3, injects `vector` (#BP) as the CPU would. Kernel text (virtual = physical +
   * 0xffffffff80000000) or identity-mapped memory only.
   */
  #stepOver(insn: Uint8Array, vector: number | undefined): boolean {
    const c = this.#c;
    const regs = new BigUint64Array(SIZE.regs / 8);
    if (c.ioctl_ptr(this.#vcpu, KVM.GET_REGS, Deno.UnsafePointer.of(regs)) < 0) return false;
    const rip = regs[REGS.rip / 8];
    const KTEXT = 0xffffffff80000000n;
    // Kernel text (virtual = physical + KTEXT) or identity-mapped low memory.
    const base = rip >= KTEXT ? KTEXT : 0n;
    if (rip - base >= BigInt(this.ram.length)) return false;
    const phys = Number(rip - base);
    const from = Math.max(0, phys - 0x2000),
      to = Math.min(this.ram.length - insn.length, phys + 0x2000);
    const hits: number[] = [];
    for (let a = from; a < to; a++) {
      if (this.ram[a] !== insn[0]) continue;
      let ok = true;
      for (let i = 1; i < insn.length && ok; i++) ok = this.ram[a + i] === insn[i];
      if (ok) hits.push(a);
    }
    if (hits.length !== 1) return false;
    regs[REGS.rip / 8] = BigInt(hits[0] + 1) + base;
    if (c.ioctl_ptr(this.#vcpu, KVM.SET_REGS, Deno.UnsafePointer.of(regs)) < 0) return false;
    if (vector === undefined) return true;
    const ev = new Uint8Array(64);
    if (c.ioctl_ptr(this.#vcpu, KVM.GET_VCPU_EVENTS, Deno.UnsafePointer.of(ev)) < 0) return false;
    ev[0] = 1; // exception.injected
    ev[1] = vector;
    ev[2] = 0; // no error code
    ev[3] = 0;
    return c.ioctl_ptr(this.#vcpu, KVM.SET_VCPU_EVENTS, Deno.UnsafePointer.of(ev)) >= 0;
  }

  /** rip, rsp and the control registers, for error messages. */
  #cpuState(): string {
    const regs = new BigUint64Array(SIZE.regs / 8), sregs = new Uint8Array(SIZE.sregs);
    const c = this.#c;
    if (
      c.ioctl_ptr(this.#vcpu, KVM.GET_REGS, Deno.UnsafePointer.of(regs)) < 0 ||
      c.ioctl_ptr(this.#vcpu, KVM.GET_SREGS, Deno.UnsafePointer.of(sregs)) < 0
    ) return "vCPU state unreadable";
    const sv = new DataView(sregs.buffer);
    const hex = (x: bigint) => "0x" + x.toString(16);
    return [
      `rsp ${hex(regs[REGS.rsp / 8])}`,
      `rflags ${hex(regs[REGS.rflags / 8])}`,
      `cs ${hex(BigInt(sv.getUint16(SREGS.cs + 12, true)))}`,
      ...(["cr0", "cr2", "cr3", "cr4", "efer"] as const).map((r) =>
        `${r} ${hex(sv.getBigUint64(SREGS[r], true))}`
      ),
    ].join(" ");
  }

  #rip(): number | undefined {
    const regs = new BigUint64Array(SIZE.regs / 8);
    if (this.#c.ioctl_ptr(this.#vcpu, KVM.GET_REGS, Deno.UnsafePointer.of(regs)) < 0) {
      return undefined;
    }
    return Number(regs[REGS.rip / 8]);
  }

  #flushConsole(): void {
    if (this.#txBuf.length === 0) return;
    const out = Uint8Array.from(this.#txBuf);
    this.#txBuf = [];
    this.opts.onConsole(out);
  }

  /** An MMIO exit: a virtio-mmio window's register, else the VM ends. */
  #mmio(run: Uint8Array, rv: DataView): void {
    const addr = Number(rv.getBigUint64(RUN.mmioPhysAddr, true));
    const len = rv.getUint32(RUN.mmioLen, true);
    const write = run[RUN.mmioIsWrite] !== 0;
    const i = Math.floor((addr - virtioMmioBase(0)) / VIRTIO_MMIO_SIZE);
    const t = this.virtio[i];
    if (!t || addr < virtioMmioBase(0) || (len !== 1 && len !== 2 && len !== 4)) {
      throw new KvmError(
        `guest MMIO ${write ? "write to" : "read from"} 0x${
          addr.toString(16)
        } (${len} bytes): no device there`,
      );
    }
    const off = addr - virtioMmioBase(i);
    if (write) {
      t.write(off, len, rv.getUint32(RUN.mmioData, true) & (len === 4 ? -1 : (1 << (8 * len)) - 1));
    } else {
      const v = t.read(off, len);
      for (let b = 0; b < len; b++) run[RUN.mmioData + b] = (v >>> (8 * b)) & 0xff;
    }
  }

  #portIo(run: Uint8Array, rv: DataView): void {
    const out = run[RUN.ioDirection] === IO_OUT;
    const size = run[RUN.ioSize];
    const port = rv.getUint16(RUN.ioPort, true);
    const count = rv.getUint32(RUN.ioCount, true);
    let off = Number(rv.getBigUint64(RUN.ioDataOffset, true));
    if (off + size * count > run.length) {
      throw new KvmError("port I/O data outside the kvm_run page");
    }
    for (let i = 0; i < count; i++, off += size) {
      if (out) {
        let value = 0;
        for (let b = size - 1; b >= 0; b--) value = (value << 8) | run[off + b];
        this.#portWrite(port, size, value >>> 0);
      } else {
        const value = this.#portRead(port, size);
        for (let b = 0; b < size; b++) run[off + b] = (value >>> (8 * b)) & 0xff;
      }
    }
  }

  #portRead(port: number, size: number): number {
    if (this.pit && ((port >= 0x40 && port <= 0x43) || port === 0x61)) return this.pit.read(port);
    if (port >= COM1 && port < COM1 + 8 && size === 1) return this.uart.read(port - COM1, 1);
    if (port === I8042_CMD) return 0xff; // no controller: Linux's i8042 probe gives up at once
    this.unclaimedPortAccesses++;
    return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  }

  #portWrite(port: number, size: number, value: number): void {
    if (this.pit && ((port >= 0x40 && port <= 0x43) || port === 0x61)) {
      return this.pit.write(port, value);
    }
    if (port >= COM1 && port < COM1 + 8 && size === 1) {
      return this.uart.write(port - COM1, 1, value);
    }
    if (port === I8042_CMD && (value & 0xff) === 0xfe) {
      this.#stopped ??= { kind: "reset", message: "guest reset (i8042 pulse reset line)" };
      return;
    }
    if (port !== I8042_DATA) this.unclaimedPortAccesses++;
  }

  /** Frees the VM's file descriptors and memory. */
  close(): void {
    this.pit?.close();
    const c = this.#c;
    c.close(this.#vcpu);
    c.close(this.#vm);
    c.close(this.#kvm);
  }
}
