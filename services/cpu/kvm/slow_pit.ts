/**
 * An i8254 PIT in user space whose channel 0 interrupts come `slowdown` times less often than
 * programmed, for a PVM host: there every guest kernel instruction is emulated (tens to
 * hundreds of thousands a second), and Linux's periodic tick (HZ 250, ~1350 emulated
 * instructions each, measured with kvm:kvm_emulate_insn) takes all of it once the machine is
 * loaded, so the boot stops making progress. The guest's clock source (TSC, kvm-clock) keeps
 * real time; only jiffies advance slower. Channel 2 and port 0x61 are modelled enough for
 * Linux's PIT probes (counter reads count down; OUT2 follows it).
 */

/** The PIT's input clock, Hz. */
export const PIT_HZ = 1_193_182;

/** Port numbers the PIT answers (0x40-0x43 and the NMI status/control port 0x61). */
export const PIT_PORTS = [0x40, 0x41, 0x42, 0x43, 0x61] as const;

interface Channel {
  mode: number;
  /** Access mode: 1 lobyte, 2 hibyte, 3 lobyte then hibyte. */
  access: number;
  reload: number;
  /** Next byte written is the high one (access 3). */
  writeHigh: boolean;
  readHigh: boolean;
  latched: number | undefined;
  /** performance.now() when the count was loaded. */
  start: number;
}

/** Channel 0 (IRQ 0 at a slowed rate) and channel 2 of an 8254. */
export class SlowPit {
  readonly #ch: Channel[] = [0, 1, 2].map(() => ({
    mode: 0,
    access: 3,
    reload: 0x10000,
    writeHigh: false,
    readHigh: false,
    latched: undefined,
    start: performance.now(),
  }));
  #timer: ReturnType<typeof setInterval> | undefined;
  #port61 = 0;
  /** IRQ 0 pulses delivered. */
  ticks = 0;

  constructor(
    private readonly slowdown: number,
    private readonly pulseIrq0: () => void,
  ) {
    if (!(slowdown >= 1)) throw new RangeError(`PIT slowdown must be >= 1, got ${slowdown}`);
  }

  /** Counter value of channel `i` now (counts down from reload at PIT_HZ, real time). */
  #count(i: number): number {
    const c = this.#ch[i];
    const elapsed = Math.floor((performance.now() - c.start) * PIT_HZ / 1000);
    if (c.mode === 0 || c.mode === 1) return Math.max(0, c.reload - elapsed) & 0xffff;
    return (c.reload - (elapsed % c.reload)) & 0xffff;
  }

  /** A port read (size 1). */
  read(port: number): number {
    if (port === 0x61) {
      // OUT2 (bit 5): high once channel 2's one-shot count has run out.
      const c = this.#ch[2];
      const out2 = c.mode === 0 &&
          (performance.now() - c.start) * PIT_HZ / 1000 >= c.reload
        ? 0x20
        : 0;
      return (this.#port61 & 0x0f) | out2;
    }
    const i = port - 0x40;
    if (i < 0 || i > 2) return 0xff;
    const c = this.#ch[i];
    const v = c.latched ?? this.#count(i);
    let byte: number;
    if (c.access === 1) byte = v & 0xff;
    else if (c.access === 2) byte = v >> 8;
    else {
      byte = c.readHigh ? v >> 8 : v & 0xff;
      c.readHigh = !c.readHigh;
      if (c.readHigh) return byte & 0xff;
    }
    c.latched = undefined;
    return byte & 0xff;
  }

  /** A port write (size 1). */
  write(port: number, value: number): void {
    value &= 0xff;
    if (port === 0x61) {
      this.#port61 = value;
      return;
    }
    if (port === 0x43) {
      const i = value >> 6;
      if (i === 3) return; // read-back command: not used by Linux
      const c = this.#ch[i];
      const access = (value >> 4) & 3;
      if (access === 0) {
        c.latched = this.#count(i);
        return;
      }
      c.access = access;
      c.mode = (value >> 1) & 7;
      if (c.mode > 5) c.mode -= 4;
      c.writeHigh = false;
      c.readHigh = false;
      c.latched = undefined;
      if (i === 0) this.#stop();
      return;
    }
    const i = port - 0x40;
    if (i < 0 || i > 2) return;
    const c = this.#ch[i];
    if (c.access === 1) c.reload = (c.reload & 0xff00) | value;
    else if (c.access === 2) c.reload = (c.reload & 0xff) | (value << 8);
    else if (!c.writeHigh) {
      c.reload = (c.reload & 0xff00) | value;
      c.writeHigh = true;
      return;
    } else {
      c.reload = (c.reload & 0xff) | (value << 8);
      c.writeHigh = false;
    }
    if (c.reload === 0) c.reload = 0x10000;
    c.start = performance.now();
    if (i === 0) this.#arm(c);
  }

  #arm(c: Channel): void {
    this.#stop();
    const ms = c.reload * 1000 / PIT_HZ * this.slowdown;
    const fire = () => {
      this.ticks++;
      this.pulseIrq0();
    };
    if (c.mode === 2 || c.mode === 3) this.#timer = setInterval(fire, ms);
    else if (c.mode === 0) this.#timer = setTimeout(fire, ms);
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops the timer (the VM ended). */
  close(): void {
    this.#stop();
  }
}
