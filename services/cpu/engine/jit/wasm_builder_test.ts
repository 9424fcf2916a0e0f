import assert from "node:assert/strict";
import {
  AtomicOp,
  ByteWriter,
  FunctionBody,
  Op,
  ValType,
  WasmModuleBuilder,
} from "./wasm_builder.ts";

const { I32, I64 } = ValType;

/** Signed LEB128 of a BigInt, the reference the no-BigInt encoder is checked against. */
function slebRef(v: bigint): number[] {
  const out: number[] = [];
  for (;;) {
    const b = Number(v & 0x7fn);
    v >>= 7n;
    if ((v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

Deno.test("s64 encodes hi:lo pairs exactly as signed LEB128 of the 64-bit value", () => {
  const values = [
    0n,
    1n,
    -1n,
    63n,
    64n,
    -64n,
    -65n,
    0x7fffffffn,
    0x80000000n,
    0xffffffffn,
    -0x80000000n,
    0x123456789abcdefn,
    -0x8000000000000000n,
    0x7fffffffffffffffn,
  ];
  let seed = 7;
  for (let i = 0; i < 500; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    const hi = BigInt.asIntN(32, BigInt(seed));
    seed = (seed * 1103515245 + 12345) >>> 0;
    values.push((hi << 32n) | BigInt(seed >>> (i % 32)));
  }
  for (const v of values) {
    const lo = Number(BigInt.asIntN(32, v));
    const hi = Number(BigInt.asIntN(32, v >> 32n));
    assert.deepEqual([...new ByteWriter().s64(lo, hi).view()], slebRef(v), `value ${v}`);
  }
});

Deno.test("s32 and u32 match the reference encodings", () => {
  for (const v of [0, 1, -1, 63, 64, -64, -65, 2 ** 31 - 1, -(2 ** 31), 624485, -123456]) {
    assert.deepEqual([...new ByteWriter().s32(v).view()], slebRef(BigInt(v)), `s32 ${v}`);
  }
  assert.deepEqual([...new ByteWriter().u32(624485).view()], [0xe5, 0x8e, 0x26]);
  assert.deepEqual([...new ByteWriter().u32(2 ** 32 - 1).view()], [0xff, 0xff, 0xff, 0xff, 0x0f]);
});

/** A one-page shared memory and a builder that imports it as env.mem. */
function sharedMemoryModule() {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  const m = new WasmModuleBuilder().importMemory({
    module: "env",
    name: "mem",
    initial: 1,
    maximum: 1,
    shared: true,
  });
  return { memory, m };
}

Deno.test("a module with i64 constants stores exact values into a shared memory", () => {
  const { memory, m } = sharedMemoryModule();
  const cases: [number, number][] = [
    [0, 0],
    [-1, -1],
    [0x89abcdef | 0, 0x01234567],
    [0, 0x80000000 | 0],
    [-1, 0x7fffffff],
    [0x40, 0],
  ];
  const f = new FunctionBody();
  cases.forEach(([lo, hi], i) => f.i32Const(i * 8).i64Const(lo, hi).mem(Op.I64_STORE, 3));
  m.exportFunction("run", m.addFunction(m.type([], []), f));
  const bytes = m.build();
  assert.ok(WebAssembly.validate(bytes));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory } });
  (inst.exports.run as () => void)();
  const i32 = new Int32Array(memory.buffer);
  cases.forEach(([lo, hi], i) => {
    assert.equal(i32[i * 2], lo, `case ${i} lo`);
    assert.equal(i32[i * 2 + 1], hi, `case ${i} hi`);
  });
});

Deno.test("loops, locals and br_if: sum of 1..n with an i64 accumulator", () => {
  const m = new WasmModuleBuilder();
  const f = new FunctionBody(1);
  const acc = f.local(I64), i = f.local(I32);
  f.localGet(0).localSet(i)
    .block().loop()
    .localGet(i).op(Op.I32_EQZ).brIf(1)
    .localGet(acc).localGet(i).op(Op.I64_EXTEND_I32_U).op(Op.I64_ADD).localSet(acc)
    .localGet(i).i32Const(1).op(Op.I32_SUB).localSet(i)
    .br(0)
    .end().end()
    // Return the sum's low word (never pass i64 across the JS boundary).
    .localGet(acc).op(Op.I32_WRAP_I64);
  m.exportFunction("sum", m.addFunction(m.type([I32], [I32]), f));
  const { sum } = new WebAssembly.Instance(new WebAssembly.Module(m.build())).exports as {
    sum(n: number): number;
  };
  assert.equal(sum(0), 0);
  assert.equal(sum(10), 55);
  assert.equal(sum(100000), (100000 * 100001 / 2) | 0);
});

Deno.test("br_table dispatch, call_indirect through an imported table, return_call", () => {
  const table = new WebAssembly.Table({ element: "anyfunc", initial: 4 });
  // Module A fills table slots 1 and 2.
  const a = new WasmModuleBuilder().importTable("env", "table", 4);
  const ti = a.type([I32], [I32]);
  const dbl = new FunctionBody(1).localGet(0).i32Const(1).op(Op.I32_SHL);
  const neg = new FunctionBody(1).i32Const(0).localGet(0).op(Op.I32_SUB);
  const fd = a.addFunction(ti, dbl), fn = a.addFunction(ti, neg);
  a.element(1, [fd, fn]);
  new WebAssembly.Instance(new WebAssembly.Module(a.build()), { env: { table } });
  // Module B: pick(k, x) = k==0 ? x+100 : table[k](x), with the indirect call as a tail call.
  const b = new WasmModuleBuilder().importTable("env", "table", 4);
  const tb = b.type([I32, I32], [I32]);
  const tInner = b.type([I32], [I32]);
  const f = new FunctionBody(2);
  f.block().block().localGet(0).brTable([0], 1).end()
    .localGet(1).i32Const(100).op(Op.I32_ADD).op(Op.RETURN).end();
  f.localGet(1).localGet(0).returnCallIndirect(tInner);
  b.exportFunction("pick", b.addFunction(tb, f));
  const bytes = b.build();
  assert.ok(WebAssembly.validate(bytes));
  const { pick } = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { table } })
    .exports as { pick(k: number, x: number): number };
  assert.equal(pick(0, 5), 105);
  assert.equal(pick(1, 5), 10);
  assert.equal(pick(2, 5), -5);
  assert.throws(() => pick(3, 5), WebAssembly.RuntimeError); // empty slot traps
});

Deno.test("atomics on the shared memory: i64 rmw add and cmpxchg", () => {
  const { memory, m } = sharedMemoryModule();
  // add(): mem64[8] += 2^32 + 1 atomically; returns the old low word.
  const add = new FunctionBody().i32Const(8).i64Const(1, 1).atomic(AtomicOp.I64_RMW_ADD, 3)
    .op(Op.I32_WRAP_I64);
  // cas(expect, replace) on mem32[16]; returns the value found.
  const cas = new FunctionBody(2).i32Const(16).localGet(0).localGet(1)
    .atomic(AtomicOp.I32_RMW_CMPXCHG, 2);
  m.exportFunction("add", m.addFunction(m.type([], [I32]), add));
  m.exportFunction("cas", m.addFunction(m.type([I32, I32], [I32]), cas));
  const ex = new WebAssembly.Instance(new WebAssembly.Module(m.build()), { env: { mem: memory } })
    .exports as { add(): number; cas(e: number, r: number): number };
  const i32 = new Int32Array(memory.buffer);
  i32[2] = -1;
  assert.equal(ex.add(), -1);
  assert.deepEqual([i32[2], i32[3]], [0, 2]); // carry into the high word
  i32[4] = 7;
  assert.equal(ex.cas(6, 9), 7);
  assert.equal(i32[4], 7);
  assert.equal(ex.cas(7, 9), 7);
  assert.equal(i32[4], 9);
});

Deno.test("imported functions come first and are called by index", () => {
  const seen: number[] = [];
  const m = new WasmModuleBuilder();
  const tv = m.type([I32], []);
  const log = m.importFunction("env", "log", tv);
  const f = new FunctionBody().i32Const(42).call(log).i32Const(-7).call(log);
  m.exportFunction("go", m.addFunction(m.type([], []), f));
  const inst = new WebAssembly.Instance(new WebAssembly.Module(m.build()), {
    env: { log: (v: number) => seen.push(v) },
  });
  (inst.exports.go as () => void)();
  assert.deepEqual(seen, [42, -7]);
  assert.throws(() => m.importFunction("env", "late", tv), /before defining/);
});
