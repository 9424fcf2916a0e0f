/**
 * The RV64GC hart: interpreter, CSRs, traps, MMU and PMP.
 */
export { Hart, type HartOptions, type HartState } from "./hart.ts";
export { Cause, Csr, Mstatus } from "./csr_numbers.ts";
