/**
 * 64-bit multiply (low and high halves) and 64-bit divide/remainder for the interpreter.
 *
 * These are rare instructions, so instead of BigInt or long limb arithmetic in JavaScript they
 * run in a tiny hand-assembled WebAssembly module that uses native i64 operations directly on
 * the register file in the shared guest memory. Each exported function takes three byte
 * addresses (rd, rs1, rs2) into the memory. Division corner cases (divide by zero, signed
 * overflow) trap in WebAssembly, so callers must handle them before calling.
 */

/** Operations of the helper, each `(rdAddr, rs1Addr, rs2Addr) => void`. */
export interface WideArith {
  mul(rd: number, a: number, b: number): void;
  mulh(rd: number, a: number, b: number): void;
  mulhsu(rd: number, a: number, b: number): void;
  mulhu(rd: number, a: number, b: number): void;
  div(rd: number, a: number, b: number): void;
  divu(rd: number, a: number, b: number): void;
  rem(rd: number, a: number, b: number): void;
  remu(rd: number, a: number, b: number): void;
}

const LOCAL_GET = 0x20, LOCAL_SET = 0x21, CALL = 0x10, END = 0x0b;
const I64_LOAD = [0x29, 0x03, 0x00], I64_STORE = [0x37, 0x03, 0x00];
const I64_CONST_MASK32 = [0x42, 0xff, 0xff, 0xff, 0xff, 0x0f];
const I64_CONST_32 = [0x42, 0x20], I64_CONST_63 = [0x42, 0x3f];
const I64_MUL = 0x7e, I64_ADD = 0x7c, I64_SUB = 0x7d, I64_AND = 0x83;
const I64_SHR_S = 0x87, I64_SHR_U = 0x88;
const I64_DIV_S = 0x7f, I64_DIV_U = 0x80, I64_REM_S = 0x81, I64_REM_U = 0x82;
const I32 = 0x7f, I64 = 0x7e;

function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function str(s: string): number[] {
  return [...leb(s.length), ...new TextEncoder().encode(s)];
}

function section(id: number, body: number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...leb(items.length), ...items.flat()];
}

function body(locals: number[][], code: number[]): number[] {
  const b = [...vec(locals), ...code, END];
  return [...leb(b.length), ...b];
}

/** rd <- op(load rs1, load rs2) for a single i64 opcode. */
function binop(op: number): number[] {
  return body([], [
    LOCAL_GET,
    0,
    LOCAL_GET,
    1,
    ...I64_LOAD,
    LOCAL_GET,
    2,
    ...I64_LOAD,
    op,
    ...I64_STORE,
  ]);
}

const MULHU_FN = 0; // function index of the internal (i64, i64) -> i64 helper

/** Unsigned 64x64 -> high 64 using 32-bit halves (locals: a=0 b=1 aL aH bL bH ll lh hl mid). */
const mulhuBody = body([[8, I64]], [
  ...[LOCAL_GET, 0, ...I64_CONST_MASK32, I64_AND, LOCAL_SET, 2],
  ...[LOCAL_GET, 0, ...I64_CONST_32, I64_SHR_U, LOCAL_SET, 3],
  ...[LOCAL_GET, 1, ...I64_CONST_MASK32, I64_AND, LOCAL_SET, 4],
  ...[LOCAL_GET, 1, ...I64_CONST_32, I64_SHR_U, LOCAL_SET, 5],
  ...[LOCAL_GET, 2, LOCAL_GET, 4, I64_MUL, LOCAL_SET, 6],
  ...[LOCAL_GET, 2, LOCAL_GET, 5, I64_MUL, LOCAL_SET, 7],
  ...[LOCAL_GET, 3, LOCAL_GET, 4, I64_MUL, LOCAL_SET, 8],
  ...[LOCAL_GET, 6, ...I64_CONST_32, I64_SHR_U],
  ...[LOCAL_GET, 7, ...I64_CONST_MASK32, I64_AND, I64_ADD],
  ...[LOCAL_GET, 8, ...I64_CONST_MASK32, I64_AND, I64_ADD, LOCAL_SET, 9],
  ...[LOCAL_GET, 3, LOCAL_GET, 5, I64_MUL],
  ...[LOCAL_GET, 7, ...I64_CONST_32, I64_SHR_U, I64_ADD],
  ...[LOCAL_GET, 8, ...I64_CONST_32, I64_SHR_U, I64_ADD],
  ...[LOCAL_GET, 9, ...I64_CONST_32, I64_SHR_U, I64_ADD],
]);

/** Signed high product: mulhu(x,y) - (x<0 ? y : 0) - (y<0 ? x : 0); locals x=3 y=4. */
function mulhSigned(bothSigned: boolean): number[] {
  const code = [
    LOCAL_GET,
    0,
    ...[LOCAL_GET, 1, ...I64_LOAD, LOCAL_SET, 3],
    ...[LOCAL_GET, 2, ...I64_LOAD, LOCAL_SET, 4],
    ...[LOCAL_GET, 3, LOCAL_GET, 4, CALL, MULHU_FN],
    ...[LOCAL_GET, 3, ...I64_CONST_63, I64_SHR_S, LOCAL_GET, 4, I64_AND, I64_SUB],
  ];
  if (bothSigned) {
    code.push(...[LOCAL_GET, 4, ...I64_CONST_63, I64_SHR_S, LOCAL_GET, 3, I64_AND, I64_SUB]);
  }
  code.push(...I64_STORE);
  return body([[2, I64]], code);
}

const mulhuWrapper = body([], [
  LOCAL_GET,
  0,
  ...[LOCAL_GET, 1, ...I64_LOAD, LOCAL_GET, 2, ...I64_LOAD, CALL, MULHU_FN],
  ...I64_STORE,
]);

const EXPORTS: [string, number[]][] = [
  ["mul", binop(I64_MUL)],
  ["mulh", mulhSigned(true)],
  ["mulhsu", mulhSigned(false)],
  ["mulhu", mulhuWrapper],
  ["div", binop(I64_DIV_S)],
  ["divu", binop(I64_DIV_U)],
  ["rem", binop(I64_REM_S)],
  ["remu", binop(I64_REM_U)],
];

function moduleBytes(): Uint8Array {
  const types = section(1, vec([[0x60, 3, I32, I32, I32, 0], [0x60, 2, I64, I64, 1, I64]]));
  // Shared memory import, min 1 page, max 65536 pages (accepts any shared memory).
  const imports = section(2, vec([[...str("e"), ...str("m"), 0x02, 0x03, 1, ...leb(65536)]]));
  const funcs = section(3, vec([[1], ...EXPORTS.map(() => [0])]));
  const exports = section(7, vec(EXPORTS.map(([name], i) => [...str(name), 0x00, i + 1])));
  const code = section(10, vec([mulhuBody, ...EXPORTS.map(([, b]) => b)]));
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...types,
    ...imports,
    ...funcs,
    ...exports,
    ...code,
  ]);
}

let compiled: WebAssembly.Module | undefined;

/** Instantiates the helper over `memory` (the guest's shared memory). */
export function createWideArith(memory: WebAssembly.Memory): WideArith {
  compiled ??= new WebAssembly.Module(moduleBytes() as BufferSource);
  const inst = new WebAssembly.Instance(compiled, { e: { m: memory } });
  return inst.exports as unknown as WideArith;
}
