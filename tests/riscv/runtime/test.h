/*
 * The bare-metal test runtime's public face: HTIF console/exit, CSR access, the trap
 * recorder, run_in_mode() and the CHECK() macro. Programs define `int main(void)`:
 * 0 = pass (the runtime prints "PASS"), anything else = the failing check.
 */
#ifndef VMESH_TEST_H
#define VMESH_TEST_H

#include <stdint.h>
#include "frame.h"

typedef uint64_t u64;
typedef int64_t i64;
typedef uint32_t u32;
typedef int32_t i32;

/* ---- HTIF console and exit (htif.c) ---- */
void htif_putchar(int c);
void htif_puts(const char *s);
void print_hex(u64 v);  /* 16 hex digits, no prefix */
void print_dec(i64 v);
void print_str_hex(const char *label, u64 v); /* "label=0123...\n" */
void htif_exit(int code) __attribute__((noreturn));
void fail_check(int line, const char *expr) __attribute__((noreturn));

/* Exits with a code derived from the line (1..255) after printing what failed. */
#define CHECK(c) do { if (!(c)) fail_check(__LINE__, #c); } while (0)

/* ---- CSRs ---- */
#define STR_(x) #x
#define STR(x) STR_(x)
#define csr_read(csr) ({ u64 v_; __asm__ volatile("csrr %0, " STR(csr) : "=r"(v_) :: "memory"); v_; })
#define csr_write(csr, val) __asm__ volatile("csrw " STR(csr) ", %0" :: "rK"((u64)(val)) : "memory")
#define csr_set(csr, val) __asm__ volatile("csrs " STR(csr) ", %0" :: "rK"((u64)(val)) : "memory")
#define csr_clear(csr, val) __asm__ volatile("csrc " STR(csr) ", %0" :: "rK"((u64)(val)) : "memory")
#define csr_swap(csr, val) ({ u64 v_; __asm__ volatile("csrrw %0, " STR(csr) ", %1" : "=r"(v_) : "rK"((u64)(val)) : "memory"); v_; })

#define MSTATUS_SIE (1ull << 1)
#define MSTATUS_MIE (1ull << 3)
#define MSTATUS_SPIE (1ull << 5)
#define MSTATUS_MPIE (1ull << 7)
#define MSTATUS_SPP (1ull << 8)
#define MSTATUS_MPP (3ull << 11)
#define MSTATUS_FS (3ull << 13)
#define MSTATUS_MPRV (1ull << 17)
#define MSTATUS_SUM (1ull << 18)
#define MSTATUS_MXR (1ull << 19)
#define MSTATUS_TVM (1ull << 20)
#define MSTATUS_TW (1ull << 21)
#define MSTATUS_TSR (1ull << 22)

#define CAUSE_MISALIGNED_FETCH 0
#define CAUSE_FETCH_ACCESS 1
#define CAUSE_ILLEGAL_INSTRUCTION 2
#define CAUSE_BREAKPOINT 3
#define CAUSE_MISALIGNED_LOAD 4
#define CAUSE_LOAD_ACCESS 5
#define CAUSE_MISALIGNED_STORE 6
#define CAUSE_STORE_ACCESS 7
#define CAUSE_USER_ECALL 8
#define CAUSE_SUPERVISOR_ECALL 9
#define CAUSE_MACHINE_ECALL 11
#define CAUSE_FETCH_PAGE_FAULT 12
#define CAUSE_LOAD_PAGE_FAULT 13
#define CAUSE_STORE_PAGE_FAULT 15
#define CAUSE_INTERRUPT (1ull << 63)

#define IRQ_S_SOFT 1
#define IRQ_M_SOFT 3
#define IRQ_S_TIMER 5
#define IRQ_M_TIMER 7

#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* CLINT (same address on QEMU spike and virt). */
#define CLINT_BASE 0x2000000ul
#define CLINT_MSIP ((volatile u32 *)(CLINT_BASE + 0x0))
#define CLINT_MTIMECMP ((volatile u64 *)(CLINT_BASE + 0x4000))
#define CLINT_MTIME ((volatile u64 *)(CLINT_BASE + 0xbff8))

/* ---- Traps (trap.c) ---- */
/* Saved registers of the interrupted context: x[i] is register xi, epc where to resume. */
struct trap_frame {
  u64 x[32];
  u64 epc;
  u64 pad;
};

/* What the last trap taken in a mode looked like. */
struct trap_record {
  u64 count;
  u64 cause;
  u64 tval;
  u64 epc;
  u64 prev_priv; /* MPP / SPP at the trap */
};

extern volatile struct trap_record m_trap;
extern volatile struct trap_record s_trap;

/*
 * Optional hooks run before the default action; return nonzero when the hook handled the
 * trap itself (it may edit the frame). Default action: exceptions skip the faulting
 * instruction (fetch faults return to ra instead), interrupts clear their enable bit.
 */
typedef int (*trap_hook_t)(struct trap_frame *f, u64 cause, u64 tval);
extern trap_hook_t m_trap_hook;
extern trap_hook_t s_trap_hook;

/* Clears both trap records (call before the code expected to trap). */
void trap_reset(void);

/* Calls fn(arg) in privilege mode PRV_U/PRV_S/PRV_M and returns its result in M-mode. */
long run_in_mode(long mode, long (*fn)(long), long arg);

/* PMP entry 15 allows everything (done by the runtime before main); lower entries win. */
void pmp_allow_all(void);

#endif
