import assert from "node:assert/strict";
import { StreamOrder } from "./stream_order.ts";
import { EscapeDecoder } from "./escape_keys.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("stream order: in order, duplicate, overlap, gap", () => {
  const order = new StreamOrder();
  assert.equal(text(order.accept(100, bytes("hello")).bytes), "hello");
  assert.deepEqual(order.accept(100, bytes("hello")), { bytes: new Uint8Array(), gap: 0 });
  assert.equal(text(order.accept(103, bytes("lo wor")).bytes), " wor");
  const gapped = order.accept(112, bytes("!"));
  assert.equal(gapped.gap, 3);
  assert.equal(text(gapped.bytes), "!");
  assert.equal(order.lost, 3);
  assert.equal(order.next, 113);
});

Deno.test("escape keys: Ctrl-A x quits, Ctrl-A Ctrl-A is literal, split across reads", () => {
  const d = new EscapeDecoder();
  let r = d.feed(bytes("ab\x01"));
  assert.equal(text(r.forward), "ab");
  assert.deepEqual(r.commands, []);
  r = d.feed(bytes("\x01c\x01c\x01zd\x01x"));
  assert.equal(text(r.forward), "\x01cd");
  assert.deepEqual(r.commands, ["monitor", "quit"]);
  assert.equal(d.pending, false);
});
