import assert from "node:assert/strict";
import { assemble, ManualClock, TestBus } from "../hart/test_support.ts";
import { DRAM_BASE, GuestMemory } from "../guest_memory.ts";
import { Hart } from "../hart/hart.ts";
import { StopReason } from "../engine.ts";
import { type DebugTarget, GdbStub } from "./gdb_stub.ts";
import { leHex } from "./rsp_packet.ts";
import { Csr, HartLayout } from "../hart/mod.ts";
import { Machine } from "../machine/machine.ts";
import { assemble as assembleElf, PRELUDE } from "../machine/asm_test_support.ts";
import { parseElf } from "../machine/elf.ts";

// A hot loop of straight-line blocks: the translator runs it as one region.
const LOOP = `
.globl _start
_start: li a0, 0
loop: addi a0, a0, 1
  addi a1, a1, 2
  addi a2, a2, 3
  addi a3, a3, 4
  j loop
`;
const ADDI_A2 = DRAM_BASE + 4 + 8; // li a0,0 is 4 bytes (c.li is 2: assembled with norvc)

/** A real hart with the translator, already running the loop as translated code. */
async function hotHart(): Promise<{ hart: Hart; mem: GuestMemory }> {
  const bin = await assemble(".option norvc\n" + LOOP);
  const mem = new GuestMemory(4 << 20);
  mem.writePhys(DRAM_BASE, bin);
  const hart = new Hart({
    mem,
    hartId: 0,
    bus: new TestBus(() => {}),
    clock: new ManualClock(),
    engine: "jit",
  });
  hart.reset(DRAM_BASE);
  for (let i = 0; i < 100 && hart.translator!.liveRegions === 0; i++) {
    hart.run(100_000);
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(hart.translator!.liveRegions > 0, "the loop got translated");
  return { hart, mem };
}

function session(hart: Hart, mem: GuestMemory) {
  const replies: string[] = [];
  let kills = 0;
  const target: DebugTarget = { harts: [hart], mem, kill: () => kills++ };
  const stub = new GdbStub(target, { waitForClient: true });
  const connect = () => stub.connect((p) => replies.push(p));
  connect();
  const ask = (p: string) => {
    replies.length = 0;
    stub.handlePacket(p);
    return replies.shift();
  };
  return { stub, replies, ask, connect, kills: () => kills };
}

Deno.test("gdb stub: stepi is one instruction under the translator", async () => {
  const { hart, mem } = await hotHart();
  const { stub, ask, replies } = session(hart, mem);
  for (let i = 0; i < 12; i++) {
    const before = hart.instret, pc = hart.pc;
    assert.equal(ask("s"), undefined, "no reply until the step is done");
    assert.equal(await stub.runBatch(100_000), StopReason.Budget);
    assert.deepEqual(replies, ["T05thread:01;"]);
    assert.equal(hart.instret - before, 1, `step ${i} retired one instruction`);
    const next = hart.pc;
    assert.ok(next === pc + 4 || next === DRAM_BASE + 4, `pc 0x${pc.toString(16)} -> next`);
    assert.ok(stub.stopped);
  }
});

Deno.test("gdb stub: a breakpoint in translated code stops on it, every loop", async () => {
  const { hart, mem } = await hotHart();
  const { stub, ask, replies } = session(hart, mem);
  assert.equal(ask(`Z0,${ADDI_A2.toString(16)},4`), "OK");
  let a0: bigint | undefined;
  for (let round = 0; round < 3; round++) {
    replies.length = 0;
    stub.handlePacket("c");
    while (!stub.stopped) await stub.runBatch(100_000);
    assert.deepEqual(replies, ["T05thread:01;"]);
    assert.equal(ask("p20"), leHex(BigInt(ADDI_A2), 8));
    const now = hart.getReg(10);
    if (a0 !== undefined) assert.equal(now, a0 + 1n, "one loop per continue");
    a0 = now;
  }
  assert.equal(ask(`z0,${ADDI_A2.toString(16)},4`), "OK");
  stub.handlePacket("c");
  await stub.runBatch(10_000);
  assert.ok(!stub.stopped, "no breakpoint: runs on");
  stub.interrupt();
  assert.equal(replies.at(-1), "T02thread:01;");
});

Deno.test("gdb stub: the target is held exactly while the hart is stopped", async () => {
  const { hart, mem } = await hotHart();
  const events: string[] = [];
  const stub = new GdbStub({
    harts: [hart],
    mem,
    kill: () => {},
    hold: () => events.push("hold"),
    release: () => events.push("release"),
  }, { waitForClient: true });
  stub.connect(() => {});
  assert.deepEqual(events, ["hold"], "-S: held from the start; connecting changes nothing");
  stub.handlePacket("s");
  await stub.runBatch(100);
  assert.deepEqual(events, ["hold", "release", "hold"]);
  stub.handlePacket("c");
  await stub.runBatch(100);
  stub.interrupt();
  stub.disconnect();
  assert.deepEqual(events, ["hold", "release", "hold", "release", "hold", "release"]);
});

Deno.test("gdb stub: registers and memory through g/G/p/P/m/M/X", async () => {
  const { hart, mem } = await hotHart();
  const { ask } = session(hart, mem);
  const g = ask("g")!;
  assert.equal(g.length, 33 * 16);
  assert.equal(g.slice(10 * 16, 11 * 16), leHex(hart.getReg(10), 8));
  assert.equal(ask("P0b=efbeadde00000000"), "OK");
  assert.equal(hart.getReg(11), 0xdeadbeefn);
  assert.equal(ask("p0b"), "efbeadde00000000");
  assert.equal(ask("P00=0100000000000000"), "OK", "x0 writes are accepted and ignored");
  assert.equal(hart.getReg(0), 0n);
  assert.equal(ask("P21=000000000000f03f"), "OK"); // f0 = 1.0
  assert.equal(hart.getFReg(0), 0x3ff0000000000000n);
  assert.equal(ask("p341"), leHex(hart.readCsr(0x300), 8), "mstatus at 65 + 0x300");
  const G = g.slice(0, 32 * 16) + leHex(BigInt(DRAM_BASE + 8), 8);
  assert.equal(ask("G" + G), "OK");
  assert.equal(hart.pc, DRAM_BASE + 8);
  assert.equal(ask("M80100000,4:01020304"), "OK");
  assert.equal(ask("m80100000,4"), "01020304");
  assert.equal(ask("X80100002,2:}\x03}\x04"), "OK"); // binary # and $, escaped
  assert.equal(ask("m80100000,4"), "01022324");
  assert.equal(ask("m10000000,4"), "E14", "outside RAM");
});

Deno.test("gdb stub: random packets never throw and leave a working stub", async () => {
  const { hart, mem } = await hotHart();
  const { stub, ask, connect, replies } = session(hart, mem);
  const letters = "?gGpPmMXcsCSZzDkHTvqQx!";
  const alphabet = "0123456789abcdefABCDEF,:;=-.}#$*xyz \x00\x7f\xff";
  let seed = 12345;
  const rand = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const saved = hart.save();
  for (let i = 0; i < 3000; i++) {
    let p = letters[rand(letters.length)];
    if (rand(3) === 0) p += ["Cont;", "Supported:", "Xfer:features:read:", "Attached"][rand(4)];
    const len = rand(40);
    for (let j = 0; j < len; j++) p += alphabet[rand(alphabet.length)];
    stub.handlePacket(p);
    connect(); // after D or k: a new client (stops the hart again)
    hart.load(saved); // random G/P/M writes could have aimed the pc anywhere
  }
  assert.ok(replies.length > 0);
  assert.equal(stub.internalErrors, 0, "every bad packet was rejected by a check, not a throw");
  assert.equal(ask("?"), "T05thread:01;");
  assert.equal(ask("p20"), leHex(hart.getPc(), 8));
});

Deno.test("gdb stub: a step does not enter a pending interrupt's handler (as QEMU's stepi)", async () => {
  const { hart, mem } = await hotHart();
  const { stub } = session(hart, mem);
  const handler = DRAM_BASE + 0x1000;
  hart.writeCsr(Csr.MTVEC, BigInt(handler));
  hart.writeCsr(Csr.MIE, 0x80n); // MTIE
  hart.writeCsr(Csr.MSTATUS, hart.readCsr(Csr.MSTATUS) | 8n); // MIE
  Atomics.store(mem.i32, (mem.hartBase(0) + HartLayout.MIP) >> 2, 0x80); // MTIP pending
  const pc = hart.pc;
  stub.handlePacket("s");
  await stub.runBatch(1000);
  assert.equal(hart.pc, pc + 4 === DRAM_BASE + 24 ? DRAM_BASE + 4 : pc + 4, "stepped in the loop");
  assert.equal(hart.readCsr(Csr.MIE), 0x80n, "mie restored");
  hart.run(1); // without the stub: the interrupt is taken now
  assert.equal(hart.pc, handler, "the interrupt was pending all along");
});

Deno.test("gdb stub: outside M-mode, memory packets go through the page tables", async () => {
  // mret at DRAM_BASE drops to S-mode at a virtual pc; Sv39 maps VA 0x1000 onto 0x80100000.
  const bin = await assemble(".option norvc\n.globl _start\n_start: mret\n");
  const mem = new GuestMemory(4 << 20);
  mem.writePhys(DRAM_BASE, bin);
  const hart = new Hart({ mem, hartId: 0, bus: new TestBus(() => {}), clock: new ManualClock() });
  hart.reset(DRAM_BASE);
  const ROOT = 0x8020_0000, MID = 0x8020_1000, LEAF = 0x8020_2000, PAGE = 0x8010_0000;
  const put = (pa: number, v: bigint) => {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    mem.writePhys(pa, b);
  };
  const pte = (pa: number, flags: bigint) => (BigInt(pa / 4096) << 10n) | flags;
  put(ROOT, pte(MID, 1n));
  put(MID, pte(LEAF, 1n));
  put(LEAF + 8, pte(PAGE, 0xcfn)); // V R W X A D
  mem.writePhys(PAGE + 0x10, new Uint8Array([0xaa, 0xbb, 0xcc, 0xdd]));
  hart.writeCsr(Csr.SATP, (8n << 60n) | BigInt(ROOT / 4096));
  hart.writeCsr(Csr.MEPC, 0x1000n);
  hart.writeCsr(Csr.MSTATUS, (hart.readCsr(Csr.MSTATUS) & ~0x1800n) | 0x800n); // MPP = S
  hart.run(1);
  assert.equal(hart.priv, 1);
  assert.equal(hart.pc, 0x1000);

  const { ask } = session(hart, mem);
  assert.equal(ask("m1010,4"), "aabbccdd", "virtual 0x1010 is physical 0x80100010");
  assert.equal(ask("M1014,2:eeff"), "OK");
  assert.deepEqual(mem.readPhys(PAGE + 0x14, 2), new Uint8Array([0xee, 0xff]));
  assert.equal(ask("m80100010,4"), "E14", "the physical address is not mapped in S-mode");
  assert.equal(ask("m2000,4"), "E14", "an unmapped page");
  assert.equal(ask("m1ffe,4"), "E14", "a read running into an unmapped page");
});

Deno.test("gdb stub: watchpoints fire on the access itself (a store of an equal value, a read)", async () => {
  const bin = await assemble(`
.globl _start
_start: li t0, 0x80100000
loop: sd zero, 0(t0)   # +8: the same value the memory holds
  ld a0, 8(t0)         # +12: a read of the next doubleword
  c.addi a1, 1         # +16
  j loop               # +18
`);
  const mem = new GuestMemory(4 << 20);
  mem.writePhys(DRAM_BASE, bin);
  const hart = new Hart({
    mem,
    hartId: 0,
    bus: new TestBus(() => {}),
    clock: new ManualClock(),
    engine: "jit",
  });
  hart.reset(DRAM_BASE);
  const { stub, ask, replies } = session(hart, mem);
  const run = async () => {
    replies.length = 0;
    stub.handlePacket("c");
    while (!stub.stopped) await stub.runBatch(10_000);
    return replies.at(-1);
  };
  assert.equal(ask("Z2,80100000,8"), "OK");
  assert.equal(await run(), "T05watch:80100000;thread:01;");
  assert.equal(hart.pc, DRAM_BASE + 12, "stopped after the store");
  assert.equal(ask("z2,80100000,8"), "OK");
  assert.equal(ask("Z3,80100008,4"), "OK");
  assert.equal(await run(), "T05rwatch:80100008;thread:01;");
  assert.equal(hart.pc, DRAM_BASE + 16, "stopped after the load");
  assert.equal(ask("Z4,80100004,8"), "OK"); // overlaps both doublewords
  assert.equal(await run(), "T05awatch:80100004;thread:01;", "the store at the next loop");
  assert.equal(hart.pc, DRAM_BASE + 12);
  assert.equal(ask("z3,80100008,4"), "OK");
  assert.equal(ask("z4,80100004,8"), "OK");
  assert.equal(ask("Z2,80100010,8"), "OK"); // never touched
  replies.length = 0;
  stub.handlePacket("c");
  for (let i = 0; i < 5; i++) await stub.runBatch(10_000);
  assert.ok(!stub.stopped, "no access there: runs on");
  assert.ok(hart.getReg(11) > 1000n);
});

Deno.test("gdb stub: after the guest exits, a new client cannot hold the machine", async () => {
  const { hart, mem } = await hotHart();
  const { stub, replies, connect } = session(hart, mem);
  stub.targetExited(3);
  assert.deepEqual(replies, ["W03"]);
  connect();
  assert.ok(!stub.stopped);
  await stub.runBatch(10); // returns instead of waiting
});

Deno.test("gdb stub: one thread per hart; a breakpoint stops all, a step moves only its thread", async () => {
  const elf = await assembleElf(
    PRELUDE + `
    .option norvc
    bnez a0, other
  1:
    la t0, flag
    ld t1, 0(t0)
    beqz t1, 1b
    exit 0
  other:
    .globl target
  target:
    li t2, 1
    la t0, flag
    sd t2, 0(t0)
  2:
    wfi
    j 2b
    .data
    .align 3
  flag: .dword 0
  `,
  );
  const target = parseElf(elf).symbols.get("target")!;
  const ref: { stub?: GdbStub } = {};
  const m = new Machine({
    ramSize: 16 << 20,
    harts: 2,
    kernel: elf,
    debug: { runBatch: (n, h) => ref.stub!.runBatch(n, h) },
  });
  const stub = ref.stub = new GdbStub({
    harts: m.harts as unknown as Hart[],
    mem: m.mem,
    kill: () => m.stop(),
  }, {
    waitForClient: true,
  });
  const replies: string[] = [];
  let stopped: (() => void) | undefined;
  stub.connect((p) => {
    replies.push(p);
    if (p.startsWith("T")) stopped?.();
  });
  const ask = (p: string) => {
    replies.length = 0;
    stub.handlePacket(p);
    return replies.shift();
  };
  const resume = async (p: string) => {
    const stop = new Promise<void>((r) => stopped = r);
    replies.length = 0;
    stub.handlePacket(p);
    await stop;
    return replies.at(-1);
  };
  const run = m.run();
  assert.equal(ask("qfThreadInfo"), "m01,02");
  assert.equal(ask("qThreadExtraInfo,02"), toHexText("hart 1"));
  assert.equal(ask("T02"), "OK");
  assert.equal(ask("T03"), "E01");
  assert.equal(ask(`Z0,${target.toString(16)},4`), "OK");
  assert.equal(await resume("vCont;c"), "T05thread:02;", "hart 1 hit the breakpoint");
  assert.equal(ask("qC"), "QC02");
  assert.equal(ask("pa"), leHex(1n, 8), "a0 of hart 1 is its hart id");
  assert.equal(ask("p20"), leHex(BigInt(target), 8), "hart 1's pc is on the breakpoint");
  assert.equal(ask("Hg1"), "OK");
  assert.equal(ask("pa"), leHex(0n, 8), "a0 of hart 0");
  const pc0 = ask("p20");
  assert.equal(ask(`z0,${target.toString(16)},4`), "OK");
  // Step thread 2: hart 1 moves one instruction, hart 0 stays where it was.
  assert.equal(await resume("vCont;s:2;c"), "T05thread:02;");
  assert.equal(ask("p20"), leHex(BigInt(target + 4), 8));
  assert.equal(ask("Hg1"), "OK");
  assert.equal(ask("p20"), pc0, "hart 0 did not run during the step");
  stub.handlePacket("c");
  assert.equal(await run, 0, "hart 1 stored the flag and hart 0 powered off");
});

function toHexText(s: string): string {
  return [...new TextEncoder().encode(s)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
