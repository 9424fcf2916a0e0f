/**
 * NS16550A UART registers (byte-wide, register shift 0) as Linux's 8250 driver and OpenSBI's
 * uart8250 use them. Transmission is instantaneous (THR is always empty again at once). As in
 * QEMU's hw/char/serial.c: with FCR.FE set received bytes wait in a 16-byte FIFO (an overrun
 * sets OE and drops the byte), without it in the one-byte RBR (a new byte overwrites it and
 * sets OE, and RBR keeps its last byte after it was read); MCR resets to OUT2; toggling FCR.FE
 * or FCR.XFR/RFR flushes as QEMU does. The interrupt logic follows serial.c too, except that
 * received data interrupts at once (no FIFO trigger level, no character timeout).
 */
import type { MmioDevice, Stateful } from "../machine/mmio.ts";

const RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;
const LCR_DLAB = 0x80;
const IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
const IIR_NO_INT = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04, IIR_RLSI = 0x06;
const IIR_FIFO_ENABLED = 0xc0;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const LSR_INT_ANY = 0x1e;
const MCR_LOOP = 0x10, MCR_OUT2 = 0x08;
const MSR_DCD = 0x80, MSR_DSR = 0x20, MSR_CTS = 0x10, MSR_ANY_DELTA = 0x0f;
const FCR_ENABLE = 0x01, FCR_CLEAR_RX = 0x02, FCR_CLEAR_TX = 0x04;
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
  /** Receive FIFO (FCR.FE set). */
  rx: number[];
  /** Receive buffer register (FCR.FE clear); absent in older states (0). */
  rbr?: number;
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
    mcr: MCR_OUT2,
    lsr: LSR_THRE | LSR_TEMT,
    msr: MSR_DCD | MSR_DSR | MSR_CTS,
    scr: 0,
    divisor: 12,
    thrPending: false,
    rx: [],
    rbr: 0,
  };

  constructor(private readonly opts: Uart16550Options) {}

  /** Free places for input: in the FIFO, or 1 when RBR is empty without one (as QEMU). */
  get rxSpace(): number {
    const s = this.#s;
    if (s.fcr & FCR_ENABLE) return UART_FIFO_BYTES - s.rx.length;
    return s.lsr & LSR_DR ? 0 : 1;
  }

  /**
   * Offers input bytes; takes as many as fit and returns how many it took, so the caller
   * keeps the rest until the guest drains the UART (back-pressure instead of overrun).
   */
  receive(bytes: Uint8Array): number {
    const n = Math.min(bytes.length, this.rxSpace);
    for (let i = 0; i < n; i++) this.#put(bytes[i]);
    if (n > 0) this.#updateIrq();
    return n;
  }

  /** One received byte into the FIFO or RBR, with QEMU's overrun rules. */
  #put(byte: number): void {
    const s = this.#s;
    if (s.fcr & FCR_ENABLE) {
      if (s.rx.length < UART_FIFO_BYTES) s.rx.push(byte);
      else s.lsr |= LSR_OE;
    } else {
      if (s.lsr & LSR_DR) s.lsr |= LSR_OE;
      s.rbr = byte;
    }
    s.lsr |= LSR_DR;
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
        let b: number;
        if (s.fcr & FCR_ENABLE) {
          b = s.rx.length ? s.rx.shift()! : 0;
          if (s.rx.length === 0) s.lsr &= ~LSR_DR;
        } else {
          b = s.rbr ?? 0; // RBR keeps its byte after a read, as a real 16550 (and QEMU)
          s.lsr &= ~LSR_DR;
        }
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
          this.#put(value);
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
        // As QEMU: switching the FIFOs on or off flushes both; flushing RX keeps OE.
        if ((value ^ s.fcr) & FCR_ENABLE) value |= FCR_CLEAR_RX | FCR_CLEAR_TX;
        if (value & FCR_CLEAR_RX) {
          s.rx = [];
          s.lsr &= ~LSR_DR;
        }
        if (value & FCR_CLEAR_TX) {
          s.lsr |= LSR_THRE;
          s.thrPending = true;
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
    this.#s = { ...state, rx: [...state.rx], rbr: state.rbr ?? 0 };
    this.#updateIrq();
  }
}
