/**
 * NS16550A UART registers (byte-wide, register shift 0) as Linux's 8250 driver and OpenSBI's
 * uart8250 use them. Transmission is instantaneous (THR is always empty again at once); received
 * bytes wait in a 16-byte FIFO. The interrupt logic follows QEMU's hw/char/serial.c.
 */
import type { MmioDevice, Stateful } from "../machine/mmio.ts";

const RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
const LCR_DLAB = 0x80;
const IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
const IIR_NO_INT = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04, IIR_RLSI = 0x06;
const IIR_FIFO_ENABLED = 0xc0;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const LSR_INT_ANY = 0x1e;
const MCR_LOOP = 0x10;
const MSR_DCD = 0x80, MSR_DSR = 0x20, MSR_CTS = 0x10, MSR_ANY_DELTA = 0x0f;
const FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02;
/** Receive FIFO depth. */
export const UART_FIFO_BYTES = 16;

/** Serializable UART state. */
export interface Uart16550State {
  ier: number;
  iir: number;
  fcr: number;
  lcr: number;
  mcr: number;
  lsr: number;
  msr: number;
  scr: number;
  divisor: number;
  thrPending: boolean;
  rx: number[];
}

/** Callbacks wiring the UART to the console and the interrupt controller. */
export interface Uart16550Options {
  /** Called with each transmitted byte (the machine batches them). */
  onTransmit(byte: number): void;
  /** Drives the UART's interrupt line. */
  setIrq(level: boolean): void;
}

/** The 16550A UART. */
export class Uart16550 implements MmioDevice, Stateful<Uart16550State> {
  readonly name = "uart0";
  #s: Uart16550State = {
    ier: 0,
    iir: IIR_NO_INT,
    fcr: 0,
    lcr: 0,
    mcr: 0,
    lsr: LSR_THRE | LSR_TEMT,
    msr: MSR_DCD | MSR_DSR | MSR_CTS,
    scr: 0,
    divisor: 12,
    thrPending: false,
    rx: [],
  };

  constructor(private readonly opts: Uart16550Options) {}

  /** Free places in the receive FIFO. */
  get rxSpace(): number {
    return UART_FIFO_BYTES - this.#s.rx.length;
  }

  /**
   * Offers input bytes; takes as many as fit in the FIFO and returns how many it took, so the
   * caller keeps the rest until the guest drains the FIFO (back-pressure instead of overrun).
   */
  receive(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.rxSpace);
    for (let i = 0; i < n; i++) this.#s.rx.push(bytes[i]);
    if (n > 0) {
      this.#s.lsr |= LSR_DR;
      this.#updateIrq();
    }
    return n;
  }

  #updateIrq(): void {
    const s = this.#s;
    let iir = IIR_NO_INT;
    if ((s.ier & IER_RLSI) && (s.lsr & LSR_INT_ANY)) iir = IIR_RLSI;
    else if ((s.ier & IER_RDI) && (s.lsr & LSR_DR)) iir = IIR_RDI;
    else if ((s.ier & IER_THRI) && s.thrPending) iir = IIR_THRI;
    else if ((s.ier & IER_MSI) && (s.msr & MSR_ANY_DELTA)) iir = IIR_MSI;
    s.iir = iir | (s.fcr & FCR_ENABLE ? IIR_FIFO_ENABLED : 0);
    this.opts.setIrq(iir !== IIR_NO_INT);
  }

  read(offset: number, _size: 1 | 2 | 4): number {
    const s = this.#s;
    switch (offset) {
      case RBR_THR: {
        if (s.lcr & LCR_DLAB) return s.divisor & 0xff;
        const b = s.rx.length ? s.rx.shift()! : 0;
        if (s.rx.length === 0) s.lsr &= ~LSR_DR;
        this.#updateIrq();
        return b;
      }
      case IER:
        return s.lcr & LCR_DLAB ? (s.divisor >> 8) & 0xff : s.ier;
      case IIR_FCR: {
        const v = s.iir;
        // Reading IIR while it reports THRE clears that interrupt (16550 datasheet).
        if ((v & 0x0f) === IIR_THRI) {
          s.thrPending = false;
          this.#updateIrq();
        }
        return v;
      }
      case LCR:
        return s.lcr;
      case MCR:
        return s.mcr;
      case LSR: {
        const v = s.lsr;
        s.lsr &= ~LSR_OE; // error bits clear on read
        if (v & LSR_OE) this.#updateIrq();
        return v;
      }
      case MSR: {
        if (s.mcr & MCR_LOOP) {
          // Loopback: modem inputs mirror the modem control outputs.
          const m = s.mcr;
          return ((m & 0x0c) << 4) | ((m & 0x02) << 3) | ((m & 0x01) << 5);
        }
        const v = s.msr;
        s.msr &= ~MSR_ANY_DELTA;
        return v;
      }
      case SCR:
        return s.scr;
    }
    return 0;
  }

  write(offset: number, _size: 1 | 2 | 4, value: number): void {
    const s = this.#s;
    value &= 0xff;
    switch (offset) {
      case RBR_THR:
        if (s.lcr & LCR_DLAB) {
          s.divisor = (s.divisor & 0xff00) | value;
          return;
        }
        if (s.mcr & MCR_LOOP) {
          if (s.rx.length < UART_FIFO_BYTES) s.rx.push(value);
          else s.lsr |= LSR_OE;
          s.lsr |= LSR_DR;
        } else {
          this.opts.onTransmit(value);
        }
        s.thrPending = true; // transmitted at once: the holding register is empty again
        s.lsr |= LSR_THRE | LSR_TEMT;
        this.#updateIrq();
        return;
      case IER: {
        if (s.lcr & LCR_DLAB) {
          s.divisor = (s.divisor & 0xff) | (value << 8);
          return;
        }
        const changed = (s.ier ^ value) & 0x0f;
        s.ier = value & 0x0f;
        if (changed & IER_THRI) s.thrPending = (s.ier & IER_THRI) !== 0 && (s.lsr & LSR_THRE) !== 0;
        this.#updateIrq();
        return;
      }
      case IIR_FCR:
        if (value & FCR_CLEAR_RX) {
          s.rx = [];
          s.lsr &= ~(LSR_DR | LSR_OE);
        }
        s.fcr = value & 0xc9;
        this.#updateIrq();
        return;
      case LCR:
        s.lcr = value;
        return;
      case MCR:
        s.mcr = value & 0x1f;
        return;
      case LSR:
      case MSR:
        return; // read-only
      case SCR:
        s.scr = value;
        return;
    }
  }

  save(): Uart16550State {
    return { ...this.#s, rx: [...this.#s.rx] };
  }

  load(state: Uart16550State): void {
    this.#s = { ...state, rx: [...state.rx] };
    this.#updateIrq();
  }
}
