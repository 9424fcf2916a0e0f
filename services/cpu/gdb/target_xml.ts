/**
 * The register map gdb is given (target description XML, served through
 * `qXfer:features:read:target.xml`): x0..x31 and pc (regnums 0..32), f0..f31 (33..64), and
 * CSRs at regnum 65 + CSR number, the numbering gdb's riscv-tdep and QEMU both use.
 */
import { Csr } from "../hart/csr_numbers.ts";

/** Where a register's value lives. */
export type RegisterSource =
  | { kind: "x"; index: number }
  | { kind: "pc" }
  | { kind: "f"; index: number }
  | { kind: "csr"; csr: number }
  | { kind: "priv" };

/** One register of the description. */
export interface RegisterDef {
  name: string;
  regnum: number;
  bitsize: number;
  type: string;
  feature: string;
  source: RegisterSource;
}

const ABI_NAMES = [
  "zero",
  "ra",
  "sp",
  "gp",
  "tp",
  "t0",
  "t1",
  "t2",
  "fp",
  "s1",
  "a0",
  "a1",
  "a2",
  "a3",
  "a4",
  "a5",
  "a6",
  "a7",
  "s2",
  "s3",
  "s4",
  "s5",
  "s6",
  "s7",
  "s8",
  "s9",
  "s10",
  "s11",
  "t3",
  "t4",
  "t5",
  "t6",
]; // deno-fmt-ignore

/** CSRs listed in the csr feature (the ones a bare-metal or kernel debugging session reads). */
const CSRS: [string, number][] = [
  ["sstatus", Csr.SSTATUS],
  ["sie", Csr.SIE],
  ["stvec", Csr.STVEC],
  ["sscratch", Csr.SSCRATCH],
  ["sepc", Csr.SEPC],
  ["scause", Csr.SCAUSE],
  ["stval", Csr.STVAL],
  ["sip", Csr.SIP],
  ["satp", Csr.SATP],
  ["mstatus", Csr.MSTATUS],
  ["misa", Csr.MISA],
  ["medeleg", Csr.MEDELEG],
  ["mideleg", Csr.MIDELEG],
  ["mie", Csr.MIE],
  ["mtvec", Csr.MTVEC],
  ["mscratch", Csr.MSCRATCH],
  ["mepc", Csr.MEPC],
  ["mcause", Csr.MCAUSE],
  ["mtval", Csr.MTVAL],
  ["mip", Csr.MIP],
  ["mhartid", Csr.MHARTID],
  ["cycle", Csr.CYCLE],
  ["time", Csr.TIME],
  ["instret", Csr.INSTRET],
];

/** gdb's first CSR regnum: CSR n is regnum 65 + n. */
export const FIRST_CSR_REGNUM = 65;

/** Regnum of the virtual `priv` register (after the 4096 CSRs, as in QEMU and gdb). */
export const PRIV_REGNUM = FIRST_CSR_REGNUM + 4096;

/**
 * Every register of the description, in regnum order.
 *
 * @example
 * ```ts
 * riscv64Registers().find((r) => r.name === "pc")!.regnum; // 32
 * ```
 */
export function riscv64Registers(): RegisterDef[] {
  const cpu = "org.gnu.gdb.riscv.cpu", fpu = "org.gnu.gdb.riscv.fpu";
  const regs: RegisterDef[] = [];
  ABI_NAMES.forEach((name, i) =>
    regs.push({
      name,
      regnum: i,
      bitsize: 64,
      type: i === 1 ? "code_ptr" : i === 2 || i === 8 ? "data_ptr" : "int",
      feature: cpu,
      source: { kind: "x", index: i },
    })
  );
  regs.push({
    name: "pc",
    regnum: 32,
    bitsize: 64,
    type: "code_ptr",
    feature: cpu,
    source: { kind: "pc" },
  });
  for (let i = 0; i < 32; i++) {
    regs.push({
      name: `f${i}`,
      regnum: 33 + i,
      bitsize: 64,
      type: "ieee_double",
      feature: fpu,
      source: { kind: "f", index: i },
    });
  }
  for (
    const [name, csr] of [["fflags", Csr.FFLAGS], ["frm", Csr.FRM], ["fcsr", Csr.FCSR]] as const
  ) {
    regs.push({
      name,
      regnum: FIRST_CSR_REGNUM + csr,
      bitsize: 32,
      type: "int",
      feature: fpu,
      source: { kind: "csr", csr },
    });
  }
  for (const [name, csr] of CSRS) {
    regs.push({
      name,
      regnum: FIRST_CSR_REGNUM + csr,
      bitsize: 64,
      type: "int",
      feature: "org.gnu.gdb.riscv.csr",
      source: { kind: "csr", csr },
    });
  }
  regs.push({
    name: "priv",
    regnum: PRIV_REGNUM,
    bitsize: 64,
    type: "int",
    feature: "org.gnu.gdb.riscv.virtual",
    source: { kind: "priv" },
  });
  return regs.sort((a, b) => a.regnum - b.regnum);
}

/**
 * The target description document for `regs` (one file, every feature inline).
 *
 * @example
 * ```ts
 * targetXml(riscv64Registers()).includes('<architecture>riscv:rv64</architecture>'); // true
 * ```
 */
export function targetXml(regs: RegisterDef[]): string {
  const features = new Map<string, RegisterDef[]>();
  for (const r of regs) features.set(r.feature, [...(features.get(r.feature) ?? []), r]);
  let xml =
    '<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n' +
    "<architecture>riscv:rv64</architecture>\n";
  for (const [name, list] of features) {
    xml += `<feature name="${name}">\n`;
    for (const r of list) {
      const group = r.source.kind === "csr" && r.feature.endsWith(".csr") ? ' group="csr"' : "";
      xml +=
        `  <reg name="${r.name}" bitsize="${r.bitsize}" regnum="${r.regnum}" type="${r.type}"${group}/>\n`;
    }
    xml += "</feature>\n";
  }
  return xml + "</target>\n";
}
