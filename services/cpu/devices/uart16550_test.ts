import assert from "node:assert/strict";
import { Uart16550, UART_FIFO_BYTES } from "./uart16550.ts";

const THR = 0, IER = 1, IIR = 2, LCR = 3, LSR = 5;

function setup() {
  const out: number[] = [];
  const irq = { level: false };
  const uart = new Uart16550({ onTransmit: (b) => out.push(b), setIrq: (l) => (irq.level = l) });
  return { uart, out, irq };
}

Deno.test("UART: transmit, LSR and the divisor latch", () => {
  const { uart, out } = setup();
  assert.equal(uart.read(LSR, 1) & 0x60, 0x60, "THRE and TEMT set at reset");
  uart.write(LCR, 1, 0x80);
  uart.write(THR, 1, 0x01); // DLL
  uart.write(IER, 1, 0x00); // DLM
  assert.equal(uart.read(THR, 1), 0x01);
  uart.write(LCR, 1, 0x03);
  for (const c of "hi") uart.write(THR, 1, c.charCodeAt(0));
  assert.deepEqual(out, [0x68, 0x69], "divisor writes are not transmitted");
  assert.equal(uart.read(LCR, 1), 0x03);
});

Deno.test("UART: THRE interrupt is raised on enable and cleared by reading IIR", () => {
  const { uart, irq } = setup();
  assert.equal(uart.read(IIR, 1) & 0x0f, 0x01, "no interrupt");
  uart.write(IER, 1, 0x02);
  assert.equal(irq.level, true);
  assert.equal(uart.read(IIR, 1) & 0x0f, 0x02);
  assert.equal(irq.level, false, "reading IIR acknowledged THRE");
  assert.equal(uart.read(IIR, 1) & 0x0f, 0x01);
  uart.write(THR, 1, 0x41);
  assert.equal(irq.level, true, "transmitting empties THR again");
});

Deno.test("UART: received bytes set DR and the RX interrupt until drained", () => {
  const { uart, irq } = setup();
  uart.write(2, 1, 0x07); // FCR: enable and clear FIFOs
  uart.write(IER, 1, 0x01);
  assert.equal(irq.level, false);
  const taken = uart.receive(new TextEncoder().encode("x".repeat(20)));
  assert.equal(taken, UART_FIFO_BYTES, "FIFO takes 16 bytes, the rest waits");
  assert.equal(uart.read(LSR, 1) & 1, 1);
  assert.equal(uart.read(IIR, 1), 0xc4, "FIFO enabled, RX data available");
  assert.equal(irq.level, true);
  for (let i = 0; i < UART_FIFO_BYTES; i++) assert.equal(uart.read(THR, 1), 0x78);
  assert.equal(uart.read(LSR, 1) & 1, 0);
  assert.equal(irq.level, false);
});

const FCR = 2, MCR = 4;

Deno.test("UART: MCR resets to OUT2 as on QEMU", () => {
  const { uart } = setup();
  assert.equal(uart.read(MCR, 1), 0x08);
});

Deno.test("UART: without FIFOs one byte waits in RBR; overrun overwrites it, reads keep it", () => {
  const { uart } = setup();
  assert.equal(uart.rxSpace, 1);
  assert.equal(uart.receive(Uint8Array.of(0x41, 0x42)), 1, "one byte at a time");
  assert.equal(uart.rxSpace, 0);
  assert.equal(uart.read(THR, 1), 0x41);
  assert.equal(uart.read(THR, 1), 0x41, "RBR keeps its byte");
  assert.equal(uart.read(LSR, 1) & 0x03, 0, "no DR, no OE");
  uart.write(MCR, 1, 0x18); // loopback
  uart.write(THR, 1, 0x61);
  uart.write(THR, 1, 0x62);
  assert.equal(uart.read(LSR, 1) & 0x03, 0x03, "DR and OE");
  assert.equal(uart.read(LSR, 1) & 0x03, 0x01, "OE clears on read");
  assert.equal(uart.read(THR, 1), 0x62, "the newer byte overwrote the older");
});

Deno.test("UART: FCR flushes as QEMU (FE toggle flushes both, RFR keeps OE, XFR re-arms THRE)", () => {
  const { uart, irq } = setup();
  uart.write(FCR, 1, 0x01);
  uart.write(MCR, 1, 0x18);
  for (let i = 0; i < 20; i++) uart.write(THR, 1, i);
  assert.equal(uart.read(LSR, 1) & 0x03, 0x03, "16 kept, then overrun");
  for (let i = 0; i < 20; i++) uart.write(THR, 1, i);
  uart.write(FCR, 1, 0x03);
  assert.equal(uart.read(LSR, 1) & 0x03, 0x02, "RX flushed, OE kept");
  uart.write(THR, 1, 7);
  uart.write(FCR, 1, 0x00);
  assert.equal(uart.read(LSR, 1) & 0x01, 0, "turning the FIFOs off flushed RX");
  uart.write(MCR, 1, 0x08);
  uart.write(FCR, 1, 0x01);
  uart.write(IER, 1, 0x02);
  assert.equal(uart.read(IIR, 1), 0xc2);
  assert.equal(uart.read(IIR, 1), 0xc1, "THRE acknowledged");
  assert.equal(irq.level, false);
  uart.write(FCR, 1, 0x05); // XFR
  assert.equal(uart.read(IIR, 1), 0xc2, "XFR makes THRE pending again");
});
