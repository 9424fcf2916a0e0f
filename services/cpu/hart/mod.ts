/**
 * The RV64GC hart: interpreter, CSRs, traps, MMU and PMP, its state in one record of the
 * shared guest memory (state.ts).
 */
export { type EngineKind, Hart, type HartOptions } from "./hart.ts";
export { HartLayout, type HartSnapshot, STATE_VERSION } from "./state.ts";
export { Cause, Csr, Mstatus } from "./csr_numbers.ts";
