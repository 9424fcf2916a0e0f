import assert from "node:assert/strict";
import { Machine, MachineError } from "./machine.ts";
import { GuestMemory } from "../guest_memory.ts";
import { assemble, PRELUDE } from "./asm_test_support.ts";
import { startLoopbackEcho } from "../backends/loopback_echo_test_support.ts";

const MiB = 1024 * 1024;

async function runProgram(asm: string, setup?: (m: Machine) => void) {
  const out: number[] = [];
  const m = new Machine({
    ramSize: 16 * MiB,
    kernel: await assemble(PRELUDE + asm),
    onConsoleOutput: (b) => out.push(...b),
    maxInstructions: 50_000_000,
  });
  setup?.(m);
  const code = await m.run();
  return { code, text: new TextDecoder().decode(new Uint8Array(out)), machine: m };
}

Deno.test("machine: boot ROM passes a0 = hartid and a1 = FDT; UART output; finisher pass", async () => {
  const { code, text, machine } = await runProgram(`
    bnez a0, 1f
    lwu t0, 0(a1)          # FDT magic, big-endian d00dfeed read little-endian
    li t1, 0xedfe0dd0
    bne t0, t1, 1f
    li t0, 'o'
    putc t0
    li t0, 'k'
    putc t0
    exit 0
  1:
    exit 9
  `);
  assert.equal(text, "ok");
  assert.equal(code, 0);
  assert.equal(machine.stopCause, "poweroff");
});

Deno.test("machine: finisher fail code becomes the exit code", async () => {
  const { code, machine } = await runProgram(`exit 5`);
  assert.equal(code, 5);
  assert.equal(machine.stopCause, "fail");
});

Deno.test("machine: WFI idles until the CLINT timer interrupt fires", async () => {
  const { code, text } = await runProgram(`
    la t0, trap
    csrw mtvec, t0
    li t0, CLINT + 0xbff8
    ld t1, 0(t0)
    li t2, 20000           # 2 ms at 10 MHz
    add t1, t1, t2
    li t0, CLINT + 0x4000
    sd t1, 0(t0)
    li t0, 0x80            # MTIE
    csrw mie, t0
    csrsi mstatus, 8       # MIE
  1:
    wfi
    j 1b
    .balign 4
  trap:
    csrr t0, mcause
    li t1, 0x8000000000000007
    bne t0, t1, 2f
    li t0, 'T'
    putc t0
    exit 0
  2:
    exit 7
  `);
  assert.equal(text, "T");
  assert.equal(code, 0);
});

Deno.test("machine: UART input raises the PLIC interrupt; claim and complete", async () => {
  const { code, text } = await runProgram(
    `
    la t0, trap
    csrw mtvec, t0
    li t0, PLIC + 10 * 4   # priority of source 10 (UART)
    li t1, 1
    sw t1, 0(t0)
    li t0, PLIC + 0x2000   # context 0 (hart 0 M) enables
    li t1, 1 << 10
    sw t1, 0(t0)
    li t0, UART + 1        # IER: RX data available
    li t1, 1
    sb t1, 0(t0)
    li t0, 0x800           # MEIE
    csrw mie, t0
    csrsi mstatus, 8
  1:
    wfi
    j 1b
    .balign 4
  trap:
    li t0, PLIC + 0x200004
    lw s0, 0(t0)           # claim
    li t1, 10
    bne s0, t1, 2f
    li t0, UART
    lbu s1, 0(t0)          # the received byte
    addi s1, s1, 1
    putc s1
    li t0, PLIC + 0x200004
    sw s0, 0(t0)           # complete
    exit 0
  2:
    exit 8
  `,
    (m) => m.sendInput(new TextEncoder().encode("A")),
  );
  assert.equal(text, "B");
  assert.equal(code, 0);
});

Deno.test("machine: an instruction limit stops a program that never ends", async () => {
  const out: number[] = [];
  const m = new Machine({
    ramSize: 16 * MiB,
    kernel: await assemble(PRELUDE + "1: j 1b\n"),
    onConsoleOutput: (b) => out.push(...b),
    maxInstructions: 1_000_000,
  });
  assert.equal(await m.run(), 124);
  assert.equal(m.stopCause, "limit");
  assert.ok(m.instret >= 1_000_000);
});

Deno.test("machine: a guest that never idles leaves sockets their turns (bus replies, console input)", async () => {
  // A loopback echo stands for a NATS socket: its round trips advance only when the run loop
  // lets Deno poll I/O, which setImmediate turns alone almost never do.
  const echo = await startLoopbackEcho();
  const m = new Machine({ ramSize: 16 * MiB, kernel: await assemble(PRELUDE + "1: j 1b\n") });
  const running = m.run();
  let trips = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 1500) {
    await echo.roundTrip();
    trips++;
  }
  m.stop();
  await running;
  await echo.close();
  // A timer turn at least every POLL_EVERY_MS (100 ms) gives at least ~15 in 1.5 s; before it,
  // 4-5 a second got through.
  assert.ok(trips >= 12, `${trips} round trips in 1.5 s while the guest spins`);
});

const REBOOT_PROGRAM = `
    li s0, 0x80100000      # marker outside the program image: survives the reboot
    lw t0, 0(s0)
    bnez t0, 1f
    li t0, 1
    sw t0, 0(s0)
    li t0, '1'
    putc t0
    li t6, TEST
    li t5, 0x7777          # reset
    sw t5, 0(t6)
  2: j 2b
  1:
    li t0, '2'
    putc t0
    exit 0
`;

Deno.test("machine: a guest reset reboots through the boot ROM with images reloaded", async () => {
  const { code, text, machine } = await runProgram(REBOOT_PROGRAM);
  assert.equal(text, "12");
  assert.equal(code, 0);
  assert.equal(machine.stopCause, "poweroff");
});

Deno.test("machine: with noReboot a guest reset stops the machine", async () => {
  const m = new Machine({
    ramSize: 16 * MiB,
    kernel: await assemble(PRELUDE + REBOOT_PROGRAM),
    noReboot: true,
  });
  assert.equal(await m.run(), 0);
  assert.equal(m.stopCause, "reset");
});

Deno.test("machine: runs in a given guest memory; a memory of the wrong size is refused", async () => {
  const kernel = await assemble(PRELUDE + "  li a0, 0x2a\n  putc a0\n  exit 0\n");
  const mem = new GuestMemory(16 * MiB);
  const out: number[] = [];
  const m = new Machine({ ramSize: 16 * MiB, mem, kernel, onConsoleOutput: (b) => out.push(...b) });
  assert.equal(m.mem, mem);
  assert.equal(await m.run(), 0);
  assert.equal(String.fromCharCode(...out), "*");
  assert.throws(
    () => new Machine({ ramSize: 8 * MiB, mem, kernel }),
    (e) => e instanceof MachineError && /16777216 bytes of RAM, not 8388608/.test(e.message),
  );
});
