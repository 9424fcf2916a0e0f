/** CSR numbers and mstatus bits used by the hart (privileged spec 1.12). */

/** CSR addresses. */
export const Csr = {
  FFLAGS: 0x001,
  FRM: 0x002,
  FCSR: 0x003,
  CYCLE: 0xc00,
  TIME: 0xc01,
  INSTRET: 0xc02,
  SSTATUS: 0x100,
  SIE: 0x104,
  STVEC: 0x105,
  SCOUNTEREN: 0x106,
  SENVCFG: 0x10a,
  SSCRATCH: 0x140,
  SEPC: 0x141,
  SCAUSE: 0x142,
  STVAL: 0x143,
  SIP: 0x144,
  STIMECMP: 0x14d,
  SATP: 0x180,
  MSTATUS: 0x300,
  MISA: 0x301,
  MEDELEG: 0x302,
  MIDELEG: 0x303,
  MIE: 0x304,
  MTVEC: 0x305,
  MCOUNTEREN: 0x306,
  MENVCFG: 0x30a,
  MCOUNTINHIBIT: 0x320,
  MSCRATCH: 0x340,
  MEPC: 0x341,
  MCAUSE: 0x342,
  MTVAL: 0x343,
  MIP: 0x344,
  PMPCFG0: 0x3a0,
  PMPADDR0: 0x3b0,
  MCYCLE: 0xb00,
  MINSTRET: 0xb02,
  MVENDORID: 0xf11,
  MARCHID: 0xf12,
  MIMPID: 0xf13,
  MHARTID: 0xf14,
  MCONFIGPTR: 0xf15,
} as const;

/** mstatus bits (low word). */
export const Mstatus = {
  SIE: 1 << 1,
  MIE: 1 << 3,
  SPIE: 1 << 5,
  MPIE: 1 << 7,
  SPP: 1 << 8,
  MPP: 3 << 11,
  FS: 3 << 13,
  MPRV: 1 << 17,
  SUM: 1 << 18,
  MXR: 1 << 19,
  TVM: 1 << 20,
  TW: 1 << 21,
  TSR: 1 << 22,
} as const;

/** Synchronous exception cause codes. */
export const Cause = {
  FETCH_MISALIGNED: 0,
  FETCH_ACCESS: 1,
  ILLEGAL: 2,
  BREAKPOINT: 3,
  LOAD_MISALIGNED: 4,
  LOAD_ACCESS: 5,
  STORE_MISALIGNED: 6,
  STORE_ACCESS: 7,
  ECALL_U: 8,
  ECALL_S: 9,
  ECALL_M: 11,
  FETCH_PAGE: 12,
  LOAD_PAGE: 13,
  STORE_PAGE: 15,
} as const;

/** misa of an RV64IMAFDCSU hart. */
export const MISA_LO = 0x0014112d;
/** High word of misa: MXL = 2 (64-bit). */
export const MISA_HI = 0x80000000 | 0;
