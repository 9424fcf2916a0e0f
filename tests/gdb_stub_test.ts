/**
 * The GDB stub of `vmesh run` against the real client: Debian's gdb-multiarch in batch mode
 * debugs a bare-metal program (breakpoint on a function, registers, a variable, stepi, a
 * register and a memory write, continue to the exit), and a raw protocol client checks
 * garbage input, Ctrl-C while running, and the exit reply.
 */
import assert from "node:assert/strict";
import { buildProgram } from "./riscv/build.ts";
import { buildIsaProgram, ISA_PROGRAMS } from "./riscv/programs.ts";
import { QEMU, QEMU_CPU } from "./riscv/run.ts";
import { ensureGuestImages } from "../guest/mod.ts";
import { skippableName } from "../cli/test_summary.ts";
import { parseElf } from "../services/cpu/machine/elf.ts";
import { encodePacket, leHex, RspReader } from "../services/cpu/gdb/rsp_packet.ts";
import { GDB, gdbBatch, gdbInstalled, startVmesh } from "./gdb_session.ts";

const TARGET_SOURCE = new URL("../services/cpu/gdb/testdata/gdb_target.c", import.meta.url)
  .pathname;
const noGdb = gdbInstalled ? undefined : `${GDB} not installed (apt-get install gdb-multiarch)`;

const buildTarget = () => buildProgram(TARGET_SOURCE, { flags: ["-g"] });

for (const engine of ["jit", "interp"]) {
  Deno.test({
    name: skippableName(
      `gdb stub: gdb-multiarch breaks, reads, steps, writes and continues to the exit (${engine})`,
      noGdb,
    ),
    ignore: !gdbInstalled,
    async fn() {
      const elf = await buildTarget();
      const symbols = parseElf(await Deno.readFile(elf)).symbols;
      const work = symbols.get("work")!;
      const vm = await startVmesh(elf, ["-S", "--engine", engine]);
      const out = await gdbBatch(elf, vm.port, [
        "break work",
        "continue",
        "info registers pc",
        "print counter",
        "print $a0",
        "info registers mstatus",
        "set $a0 = 5", // work(5) = 10, not 45: main returns 3
        "stepi",
        "info registers pc",
        "set var counter = 7",
        "delete",
        "continue",
      ]);
      const vmOut = await vm.done;
      const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
      const hex = (n: number) => "0x" + n.toString(16);
      assert.match(out, /Breakpoint 1 at 0x[0-9a-f]+: file .*gdb_target\.c/, what);
      assert.match(out, /Breakpoint 1, work \(n=n@entry=10\)/, what);
      const pcLines = [...out.matchAll(/^pc\s+(0x[0-9a-f]+)\s+0x[0-9a-f]+ <work(\+\d+)?>$/gm)];
      assert.equal(pcLines.length, 2, what);
      assert.equal(pcLines[0][1], hex(work), what);
      const stepped = Number(pcLines[1][1]);
      assert.ok(
        stepped === work + 2 || stepped === work + 4,
        `stepi moved pc by one insn: ${what}`,
      );
      assert.match(out, /^\$1 = 41$/m, what);
      assert.match(out, /^\$2 = 10$/m, what);
      assert.match(out, /^mstatus\s+0x[0-9a-f]+/m, what);
      assert.match(out, /\[Inferior 1 \(Remote target\) exited with code 03\]/, what);
      assert.equal(vmOut.code, 3, what);
      // The runtime names the failing exit code after the program's own line.
      assert.equal(vmOut.stdout, "counter changed\nFAIL 3\n", what);
    },
  });
}

Deno.test({
  name: skippableName(
    "gdb stub: gdb-multiarch watchpoint on a global, then detach lets the program finish",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const elf = await buildTarget();
    const vm = await startVmesh(elf, ["-S"]);
    const out = await gdbBatch(elf, vm.port, [
      "break main",
      "continue",
      "watch counter",
      "continue",
      "info registers pc",
      "rwatch spin",
      "continue",
      "info registers time",
      "shell sleep 1",
      "stepi",
      "info registers time",
      "delete",
      "detach",
    ]);
    const vmOut = await vm.done;
    const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
    assert.match(out, /Breakpoint 1, main \(\)/, what);
    assert.match(out, /Hardware watchpoint 2: counter\s+Old value = 0\s+New value = 41/, what);
    // `while (spin)` reads it once.
    assert.match(out, /Hardware read watchpoint 3: spin\s+Value = 0/, what);
    assert.match(out, /^pc\s+0x[0-9a-f]+\s+0x[0-9a-f]+ <main\+\d+>$/m, what);
    // Guest time stood still while gdb held the hart for a second (10 MHz timebase).
    const times = [...out.matchAll(/^time\s+0x[0-9a-f]+\s+(\d+)$/gm)].map((m) => Number(m[1]));
    assert.equal(times.length, 2, what);
    assert.ok(times[1] - times[0] < 5_000_000, `time moved ${times[1] - times[0]} ticks: ${what}`);
    assert.match(out, /\[Inferior 1 \(Remote target\) detached\]/, what);
    assert.equal(vmOut.code, 0, what);
    assert.equal(vmOut.stdout, "counter 41\nPASS\n", what);
  },
});

Deno.test({
  name: skippableName("gdb stub: gdb-multiarch kill ends the emulator", noGdb),
  ignore: !gdbInstalled,
  async fn() {
    const elf = await buildTarget();
    const vm = await startVmesh(elf, ["-S"]);
    const out = await gdbBatch(elf, vm.port, ["break work", "continue", "kill"]);
    const vmOut = await vm.done;
    const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
    assert.match(out, /Breakpoint 1, work/, what);
    assert.match(out, /\[Inferior 1 \(Remote target\) killed\]/, what);
    assert.equal(vmOut.code, 0, what);
    assert.equal(vmOut.stdout, "", "killed before main printed anything");
  },
});

Deno.test({
  name: skippableName(
    "gdb stub: gdb-multiarch sees one thread per hart (--smp 4), stops on a secondary's breakpoint",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const elf = await buildIsaProgram(ISA_PROGRAMS.find((p) => p.name === "smp")!);
    const vm = await startVmesh(elf, ["-S", "--smp", "4"]);
    const out = await gdbBatch(elf, vm.port, [
      "info threads",
      "break rt_secondary",
      "continue",
      "print $a0",
      "info threads",
      "thread 1",
      "print $a0",
      "delete",
      "continue",
    ]);
    const vmOut = await vm.done;
    const what = `gdb output:\n${out}\nvmesh stderr:\n${vmOut.stderr}`;
    // Before anything runs, four threads; the first to reach rt_secondary is hart 1.
    assert.equal([...out.matchAll(/^[ *]\s*\d+\s+Thread \d+/gm)].length, 8, what);
    assert.match(out, /^\*\s+2\s+Thread 2 \(hart 1\).*rt_secondary/m, what);
    assert.match(out, /Thread 2 hit Breakpoint 1, 0x[0-9a-f]+ in rt_secondary/, what);
    assert.match(out, /^\$1 = 1$/m, what); // hart 1's a0: its hart id
    assert.match(out, /^\$2 = 0$/m, what); // hart 0's
    assert.match(out, /\[Switching to thread 1 \(Thread 1\)\]/, what);
    assert.match(out, /\[Inferior 1 \(Remote target\) exited normally\]/, what);
    assert.equal(vmOut.code, 0, what);
    assert.equal(vmOut.stdout, "PASS\n", what);
  },
});

/** A free TCP port on 127.0.0.1 (for QEMU, which cannot report the one it picked). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

Deno.test({
  name: skippableName(
    "gdb stub: the Linux kernel under OpenSBI, as QEMU's gdbstub shows it (differential)",
    noGdb,
  ),
  ignore: !gdbInstalled,
  async fn() {
    const images = await ensureGuestImages();
    // Kernel entry (physical, before the MMU), a step, a second breakpoint, registers, code.
    const script = [
      "break *0x80200000",
      "continue",
      "info registers pc a0 a1 priv",
      "x/4xw 0x80200000",
      "stepi",
      "info registers pc",
      "delete",
      "hbreak *0x80200040",
      "continue",
      "info registers pc ra sp gp satp",
      "x/2i $pc",
      "kill",
    ];
    // What both must agree on: register lines, memory lines, disassembly, stop locations.
    const facts = (out: string) =>
      out.split("\n").filter((l) =>
        /^(pc|a0|a1|priv|ra|sp|gp|satp)\s/.test(l) || /^(=> )?\s*0x[0-9a-f]+:/.test(l) ||
        /^0x[0-9a-f]+ in \?\? \(\)$/.test(l) || /^Breakpoint \d, 0x/.test(l)
      );

    const vm = await startVmesh(images.kernel, ["-S", "--bios", images.firmware]);
    const vmesh = await gdbBatch(null, vm.port, script);
    const vmOut = await vm.done;

    const port = freePort();
    const qemu = new Deno.Command(QEMU, {
      args: [
        "-M",
        "virt",
        "-cpu",
        QEMU_CPU,
        "-m",
        "128M",
        "-nographic",
        "-monitor",
        "none",
        "-bios",
        images.firmware,
        "-kernel",
        images.kernel,
        "-gdb",
        `tcp:127.0.0.1:${port}`,
        "-S",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    let oracle = "";
    try {
      for (let i = 0; i < 50 && !oracle.includes("Breakpoint 1,"); i++) {
        await new Promise((r) => setTimeout(r, 200)); // until QEMU listens
        oracle = await gdbBatch(null, port, script);
      }
    } finally {
      try {
        qemu.kill("SIGKILL");
      } catch { /* gdb's kill ended it */ }
      await qemu.output().catch(() => {});
    }
    const what = `vmesh:\n${vmesh}\nvmesh stderr:\n${vmOut.stderr}\nqemu:\n${oracle}`;
    assert.match(vmesh, /Breakpoint 1, 0x0000000080200000 in \?\? \(\)/, what);
    assert.match(vmesh, /^priv\s+0x1\s+prv:1 \[Supervisor\]$/m, what);
    assert.match(vmesh, /Breakpoint 2, 0x0000000080200040 in \?\? \(\)/, what);
    assert.match(vmesh, /\[Inferior 1 \(Remote target\) killed\]/, what);
    assert.ok(facts(oracle).length >= 14, `the oracle ran the script: ${what}`);
    assert.deepEqual(facts(vmesh), facts(oracle), what);
    assert.equal(vmOut.code, 0, what);
  },
});

/** A minimal protocol client over TCP (the framing from rsp_packet.ts). */
class RawClient {
  #conn: Deno.Conn;
  #reader = new RspReader();
  #packets: string[] = [];
  #waiting: (() => void) | undefined;
  nacks = 0;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    (async () => {
      const buf = new Uint8Array(65536);
      try {
        while (true) {
          const n = await conn.read(buf);
          if (n === null) break;
          for (const ev of this.#reader.feed(buf.subarray(0, n))) {
            if (ev.kind === "packet") this.#packets.push(ev.payload);
            if (ev.kind === "nack") this.nacks++;
          }
          this.#waiting?.();
        }
      } catch { /* closed */ }
      this.#waiting?.();
    })();
  }

  static async connect(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async raw(bytes: Uint8Array | string): Promise<void> {
    const b = typeof bytes === "string" ? Uint8Array.from(bytes, (c) => c.charCodeAt(0)) : bytes;
    let off = 0;
    while (off < b.length) off += await this.#conn.write(b.subarray(off));
  }

  /** Sends one packet; with `reply`, waits for the next packet from the stub. */
  async send(payload: string): Promise<void> {
    await this.raw(encodePacket(payload));
  }

  async next(timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (this.#packets.length === 0) {
      if (Date.now() > deadline) throw new Error("no reply from the stub");
      await new Promise<void>((r) => {
        this.#waiting = r;
        setTimeout(r, 200);
      });
    }
    return this.#packets.shift()!;
  }

  async ask(payload: string): Promise<string> {
    await this.send(payload);
    return await this.next();
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }
}

Deno.test({
  name: "gdb stub: garbage input, Ctrl-C while running, memory writes and the exit reply",
  async fn() {
    const elf = await buildTarget();
    const symbols = parseElf(await Deno.readFile(elf)).symbols;
    const spin = symbols.get("spin")!, main = symbols.get("main")!;
    const vm = await startVmesh(elf, ["-S"]);
    const c = await RawClient.connect(vm.port);
    try {
      // Garbage: noise outside packets, a bad checksum, malformed and unknown commands.
      const noise = new Uint8Array(4096);
      crypto.getRandomValues(noise);
      await c.raw(noise.map((b) => b === 0x24 || b === 0x23 ? 0x20 : b));
      await c.raw("$g#00");
      const bad = [
        "m zz",
        "mffffffffffffffff,10",
        "M80000000,4:zz",
        "X80000000,4:a",
        "Pzz=1",
        "p99999",
        "G12",
        "Z0,xyz",
        "Z2,0,8", // a watchpoint outside RAM
        "Z5,80000000,8", // no such type
        "qXfer:features:read:other.xml:0,10",
        "vCont;q",
        "Hgzz",
        "\x00\xff\x7f",
        "x".repeat(70_000),
      ];
      for (const p of bad) {
        if (p.length > 60_000) await c.raw(`$${p}#00`); // over MAX_PACKET: dropped
        else assert.match(await c.ask(p), /^(E[0-9a-fA-F]{2})?$/, `reply to ${JSON.stringify(p)}`);
      }
      assert.ok(c.nacks >= 1, "a bad checksum is answered with '-'");
      // Still a working stub.
      assert.equal(await c.ask("?"), "T05thread:01;");
      assert.equal(await c.ask("qAttached"), "1");
      assert.match(await c.ask("vCont?"), /^vCont;c;C;s;S$/);
      const xml = await c.ask("qXfer:features:read:target.xml:0,ffff");
      assert.match(xml, /^l<\?xml/);
      assert.match(xml, /<reg name="pc" bitsize="64" regnum="32"/);
      assert.match(xml, /<reg name="mstatus" bitsize="64" regnum="833"/);
      assert.equal(await c.ask("p20"), leHex(0x1000n, 8), "pc at the reset vector (-S)");

      // Hold main in its loop, run, interrupt it.
      assert.equal(await c.ask(`M${spin.toString(16)},8:${leHex(1n, 8)}`), "OK");
      assert.equal(await c.ask(`m${spin.toString(16)},8`), leHex(1n, 8));
      await c.send("c");
      await new Promise((r) => setTimeout(r, 500));
      await c.raw(new Uint8Array([0x03]));
      assert.equal(await c.next(), "T02thread:01;");
      const pc = Number(BigInt("0x" + (await c.ask("p20")).match(/../g)!.reverse().join("")));
      assert.ok(pc >= main && pc < main + 0x100, `pc 0x${pc.toString(16)} in main's loop`);
      // Release it and let it run to the end: the stub reports the exit code.
      assert.equal(await c.ask(`M${spin.toString(16)},8:${leHex(0n, 8)}`), "OK");
      await c.send("vCont;c");
      assert.equal(await c.next(), "W00");
    } finally {
      c.close();
    }
    const r = await vm.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "counter 41\nPASS\n", r.stderr);
  },
});
