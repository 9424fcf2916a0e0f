/**
 * A flattened device tree (DTB, version 17) writer: a plain node tree in, the blob out.
 * Layout follows the devicetree specification v0.4, chapter 5.
 */

/** FDT header magic. */
export const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_END = 9;
const HEADER_BYTES = 40;

/** One device tree node: a name (`unit@addr`), properties in order, and children. */
export interface FdtNode {
  name: string;
  props: FdtProp[];
  children: FdtNode[];
}

/** One property: a name and its raw big-endian value. */
export interface FdtProp {
  name: string;
  value: Uint8Array;
}

/** A new node. */
export function node(name: string, props: FdtProp[] = [], children: FdtNode[] = []): FdtNode {
  return { name, props, children };
}

/** A property holding 32-bit cells. */
export function cells(name: string, ...values: number[]): FdtProp {
  const value = new Uint8Array(values.length * 4);
  const dv = new DataView(value.buffer);
  values.forEach((v, i) => dv.setUint32(i * 4, v >>> 0));
  return { name, value };
}

/** Splits a 64-bit address (a JS number below 2^53) into two cells, high first. */
export function u64Cells(v: number): [number, number] {
  return [Math.floor(v / 0x1_0000_0000) >>> 0, v >>> 0];
}

/** A property holding 64-bit values as pairs of cells (e.g. `reg` with #address-cells = 2). */
export function cells64(name: string, ...values: number[]): FdtProp {
  return cells(name, ...values.flatMap(u64Cells));
}

/** A property holding one or more NUL-terminated strings. */
export function strings(name: string, ...values: string[]): FdtProp {
  return { name, value: new TextEncoder().encode(values.map((s) => s + "\0").join("")) };
}

/** A property with no value (a boolean flag such as `interrupt-controller`). */
export function flag(name: string): FdtProp {
  return { name, value: new Uint8Array(0) };
}

/** Serializes a tree into a DTB v17 blob (no memory reservations, boot CPU 0). */
export function writeFdt(root: FdtNode): Uint8Array {
  const struct: number[] = [];
  const strTable: number[] = [];
  const strOffsets = new Map<string, number>();
  const enc = new TextEncoder();
  const push32 = (v: number) =>
    struct.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const pushBytes = (b: Uint8Array) => {
    for (const x of b) struct.push(x);
    while (struct.length % 4) struct.push(0);
  };
  const stringOffset = (name: string) => {
    let off = strOffsets.get(name);
    if (off === undefined) {
      off = strTable.length;
      strOffsets.set(name, off);
      for (const b of enc.encode(name)) strTable.push(b);
      strTable.push(0);
    }
    return off;
  };
  const emit = (n: FdtNode) => {
    push32(FDT_BEGIN_NODE);
    const nameBytes = enc.encode(n.name);
    pushBytes(new Uint8Array([...nameBytes, 0]));
    for (const p of n.props) {
      push32(FDT_PROP);
      push32(p.value.length);
      push32(stringOffset(p.name));
      pushBytes(p.value);
    }
    for (const c of n.children) emit(c);
    push32(FDT_END_NODE);
  };
  emit(root);
  push32(FDT_END);

  const rsvmapOff = HEADER_BYTES;
  const rsvmapBytes = 16; // the single terminating (0, 0) entry
  const structOff = rsvmapOff + rsvmapBytes;
  const stringsOff = structOff + struct.length;
  const total = stringsOff + strTable.length;
  const out = new Uint8Array((total + 7) & ~7);
  const dv = new DataView(out.buffer);
  const header = [
    FDT_MAGIC,
    out.length,
    structOff,
    stringsOff,
    rsvmapOff,
    17, // version
    16, // last compatible version
    0, // boot_cpuid_phys
    strTable.length,
    struct.length,
  ];
  header.forEach((v, i) => dv.setUint32(i * 4, v));
  out.set(struct, structOff);
  out.set(strTable, stringsOff);
  return out;
}
