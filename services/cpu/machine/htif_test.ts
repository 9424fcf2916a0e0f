import assert from "node:assert/strict";
import { DRAM_BASE, GuestMemory, hostOffset } from "../guest_memory.ts";
import { Htif } from "./htif.ts";

const TOHOST = DRAM_BASE + 0x1000, FROMHOST = DRAM_BASE + 0x1008;

function setup() {
  const mem = new GuestMemory(64 * 1024);
  const out: number[] = [];
  const htif = new Htif(mem, TOHOST, FROMHOST, (b) => out.push(...b));
  const u64 = (addr: number) => mem.view.getBigUint64(hostOffset(addr), true);
  const setU64 = (addr: number, v: bigint) => mem.view.setBigUint64(hostOffset(addr), v, true);
  return { mem, htif, out, u64, setU64 };
}

Deno.test("HTIF: putchar writes the byte, clears tohost and answers in fromhost", () => {
  const { htif, out, u64, setU64 } = setup();
  assert.equal(htif.poll(), null, "nothing to do");
  setU64(TOHOST, (1n << 56n) | (1n << 48n) | 0x41n);
  assert.equal(htif.poll(), null);
  assert.deepEqual(out, [0x41]);
  assert.equal(u64(TOHOST), 0n);
  assert.equal(u64(FROMHOST), (1n << 56n) | (1n << 48n) | 0x141n);
});

Deno.test("HTIF: exit with code payload >> 1", () => {
  const { htif, setU64 } = setup();
  setU64(TOHOST, (42n << 1n) | 1n);
  assert.deepEqual(htif.poll(), { exit: 42 });
});

Deno.test("HTIF: proxied SYS_write prints the buffer and returns its length", () => {
  const { mem, htif, out, u64, setU64 } = setup();
  const block = DRAM_BASE + 0x2000, buf = DRAM_BASE + 0x3000;
  mem.writePhys(buf, new TextEncoder().encode("hey"));
  setU64(block, 64n);
  setU64(block + 8, 1n);
  setU64(block + 16, BigInt(buf));
  setU64(block + 24, 3n);
  setU64(TOHOST, BigInt(block));
  assert.equal(htif.poll(), null);
  assert.equal(new TextDecoder().decode(new Uint8Array(out)), "hey");
  assert.equal(u64(block), 3n);
  assert.equal(u64(FROMHOST), 1n);
});
