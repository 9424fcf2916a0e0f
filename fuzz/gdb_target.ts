/**
 * The GDB remote protocol (services/cpu/gdb/): a byte stream through RspReader, each packet to
 * GdbStub.handlePacket on the harts of a real Machine, resumes run for a bounded budget. The
 * stub counts the commands that threw inside it (internalErrors): it must stay 0.
 */
import type { Hart } from "../services/cpu/hart/hart.ts";
import { DRAM_BASE } from "../services/cpu/guest_memory.ts";
import { GdbStub } from "../services/cpu/gdb/gdb_stub.ts";
import { encodePacket, RspReader } from "../services/cpu/gdb/rsp_packet.ts";
import { Machine } from "../services/cpu/machine/machine.ts";
import { ByteReader } from "./bytes.ts";
import { LOOP_FIRMWARE } from "./devices.ts";
import type { Prng } from "./prng.ts";
import { type FuzzTarget, InvariantError, type Outcome } from "./target.ts";

const RAM = 1 << 20;

function hex(r: Prng): string {
  switch (r.below(5)) {
    case 0:
      return (DRAM_BASE + r.below(RAM)).toString(16);
    case 1:
      return r.below(64).toString(16);
    case 2:
      return "ffffffffffffffff".slice(0, 1 + r.below(16));
    case 3:
      return r.next().toString(16) + r.next().toString(16).padStart(8, "0");
    default:
      return "";
  }
}

function hexBytes(r: Prng, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += (r.next() & 0xff).toString(16).padStart(2, "0");
  return r.oneIn(8) ? s.slice(0, -1) + "z" : s;
}

/** One command in gdb's syntax, with arguments right, wrong or missing. */
function command(r: Prng): string {
  const a = () => hex(r);
  switch (r.below(24)) {
    case 0:
      return "?";
    case 1:
      return "g";
    case 2:
      return "G" + hexBytes(r, r.below(3) ? 33 * 8 + r.below(4) : r.below(64));
    case 3:
      return `p${a()}`;
    case 4:
      return `P${a()}=${hexBytes(r, r.below(10))}`;
    case 5:
      return `m${a()},${a()}`;
    case 6:
      return `M${a()},${a()}:${hexBytes(r, r.below(32))}`;
    case 7:
      return `X${a()},${a()}:${String.fromCharCode(...r.bytes(r.below(32)))}`;
    case 8:
      return r.oneIn(2) ? "c" : `c${a()}`;
    case 9:
      return r.oneIn(2) ? "s" : `s${a()}`;
    case 10:
      return `${r.oneIn(2) ? "C" : "S"}${a()}${r.oneIn(2) ? ";" + a() : ""}`;
    case 11:
      return `${r.oneIn(2) ? "Z" : "z"}${r.below(6)},${a()},${r.pick(["1", "2", "4", "8", a()])}`;
    case 12:
      return r.pick(["D", "k", "D;1"]);
    case 13:
      return `H${r.pick(["g", "c", "x"])}${r.pick(["0", "1", "2", "-1", a()])}`;
    case 14:
      return `T${r.pick(["1", "2", "3", a()])}`;
    case 15:
      return r.pick(["vCont?", "vMustReplyEmpty", "vKill;1"]) +
        (r.oneIn(4) ? a() : "");
    case 16:
      return `vCont;${r.pick(["c", "s", "t", "C05", "S05", "r" + a() + "," + a()])}${
        r.oneIn(2) ? ":" + r.pick(["1", "2", a()]) : ""
      }`;
    case 17:
      return r.pick([
        "qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=riscv",
        "qAttached",
        "qC",
        "qfThreadInfo",
        "qsThreadInfo",
        "qOffsets",
        "qSymbol::",
        "QStartNoAckMode",
        "qTStatus",
      ]);
    case 18:
      return `qXfer:features:read:${r.pick(["target.xml", "x.xml", ""])}:${a()},${a()}`;
    case 19:
      return `qRcmd,${hexBytes(r, r.below(16))}`;
    case 20:
      return `qThreadExtraInfo,${a()}`;
    case 21:
      return String.fromCharCode(...r.bytes(r.below(16)));
    default:
      return `${String.fromCharCode(0x20 + r.below(95))}${a()}`;
  }
}

/**
 * The GDB target; an input is the raw byte stream a client would send (packets, acks, Ctrl-C,
 * noise, some bad checksums).
 *
 * @example
 * ```ts
 * await gdbTarget.run(new TextEncoder().encode("$g#67")); // "accepted"
 * ```
 */
export const gdbTarget: FuzzTarget = {
  name: "gdb",
  description: "RspReader + GdbStub.handlePacket on a real 2-hart Machine: internalErrors stays 0",
  generate(r: Prng): Uint8Array {
    let s = r.oneIn(2) ? "+" : "";
    const n = 1 + r.below(24);
    for (let i = 0; i < n; i++) {
      const k = r.below(16);
      if (k === 0) s += "\x03";
      else if (k === 1) s += String.fromCharCode(...r.bytes(r.below(8)));
      else if (k === 2) s += "$" + command(r) + "#" + hexBytes(r, 1); // checksum most likely bad
      else s += encodePacket(command(r)) + (r.oneIn(2) ? "+" : "");
    }
    return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
  },
  async run(input: Uint8Array): Promise<Outcome> {
    const m = new Machine({ ramSize: RAM, harts: 2, engine: "interp", bios: LOOP_FIRMWARE });
    const harts = m.harts as unknown as Hart[];
    const stub = new GdbStub({ harts, mem: m.mem, kill: () => {} }, { waitForClient: true });
    const replies: string[] = [];
    stub.connect((p) => replies.push(p));
    // The reader sees the stream in pieces, as a socket delivers it.
    const rd = new ByteReader(input);
    const reader = new RspReader();
    while (rd.more) {
      const chunk = rd.take(1 + (rd.bytes.length % 61));
      for (const ev of reader.feed(chunk)) {
        if (ev.kind === "interrupt") stub.interrupt();
        if (ev.kind !== "packet") continue;
        stub.handlePacket(ev.payload);
        for (let h = 0; h < harts.length && !stub.stopped; h++) await stub.runBatch(200, h);
      }
    }
    if (!stub.stopped) stub.interrupt();
    if (stub.internalErrors !== 0) {
      throw new InvariantError(`the stub threw inside ${stub.internalErrors} command(s)`);
    }
    return "accepted";
  },
};
