/*
 * Bare-metal start-up and trap entry for vmesh ISA tests (M-mode at reset, HTIF exit).
 * _start sets sp/gp, the trap vectors and their stacks, zeroes .bss and calls rt_main on
 * hart 0; every other hart gets its own stacks and calls rt_secondary(hartid) (by default
 * it parks in WFI).
 */
#include "frame.h"

  .section .text.init, "ax", @progbits
  .globl _start
_start:
  csrr t0, mhartid
  bnez t0, secondary
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la sp, __stack_top
  la t0, __mtrap_stack_top
  csrw mscratch, t0
  la t0, __strap_stack_top
  csrw sscratch, t0
  la t0, m_trap_entry
  csrw mtvec, t0
  la t0, s_trap_entry
  csrw stvec, t0
  /* FPU on (mstatus.FS = Initial) so compiled code may use f registers. */
  li t0, (1 << 13)
  csrs mstatus, t0
  csrwi fcsr, 0
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sd zero, 0(t0)
  addi t0, t0, 8
  j 1b
2:
  call rt_main
park:
  wfi
  j park

/* Harts 1..7: a 12 KiB stack and a 4 KiB trap stack each in __smp_stacks, then rt_secondary. */
secondary:
  li t1, 8
  bgeu t0, t1, park
  .option push
  .option norelax
  la gp, __global_pointer$
  .option pop
  la t1, __smp_stacks
  slli t2, t0, 14
  add t1, t1, t2
  li t2, 0x3000
  add sp, t1, t2
  li t2, 0x4000
  add t2, t1, t2
  csrw mscratch, t2
  csrw sscratch, t2
  la t2, m_trap_entry
  csrw mtvec, t2
  la t2, s_trap_entry
  csrw stvec, t2
  li t2, (1 << 13)
  csrs mstatus, t2
  csrwi fcsr, 0
  mv a0, t0
  call rt_secondary
  j park

/* Saves every integer register into a trap frame on the trap stack (swapped in via xscratch). */
.macro SAVE_FRAME scratch
  csrrw sp, \scratch, sp
  addi sp, sp, -FRAME_SIZE
  sd x1, 1*8(sp)
  sd x3, 3*8(sp)
  sd x4, 4*8(sp)
  sd x5, 5*8(sp)
  sd x6, 6*8(sp)
  sd x7, 7*8(sp)
  sd x8, 8*8(sp)
  sd x9, 9*8(sp)
  sd x10, 10*8(sp)
  sd x11, 11*8(sp)
  sd x12, 12*8(sp)
  sd x13, 13*8(sp)
  sd x14, 14*8(sp)
  sd x15, 15*8(sp)
  sd x16, 16*8(sp)
  sd x17, 17*8(sp)
  sd x18, 18*8(sp)
  sd x19, 19*8(sp)
  sd x20, 20*8(sp)
  sd x21, 21*8(sp)
  sd x22, 22*8(sp)
  sd x23, 23*8(sp)
  sd x24, 24*8(sp)
  sd x25, 25*8(sp)
  sd x26, 26*8(sp)
  sd x27, 27*8(sp)
  sd x28, 28*8(sp)
  sd x29, 29*8(sp)
  sd x30, 30*8(sp)
  sd x31, 31*8(sp)
  csrr t0, \scratch
  sd t0, 2*8(sp)
.endm

.macro RESTORE_FRAME scratch
  addi t0, sp, FRAME_SIZE
  csrw \scratch, t0
  ld x1, 1*8(sp)
  ld x3, 3*8(sp)
  ld x4, 4*8(sp)
  ld x5, 5*8(sp)
  ld x6, 6*8(sp)
  ld x7, 7*8(sp)
  ld x8, 8*8(sp)
  ld x9, 9*8(sp)
  ld x10, 10*8(sp)
  ld x11, 11*8(sp)
  ld x12, 12*8(sp)
  ld x13, 13*8(sp)
  ld x14, 14*8(sp)
  ld x15, 15*8(sp)
  ld x16, 16*8(sp)
  ld x17, 17*8(sp)
  ld x18, 18*8(sp)
  ld x19, 19*8(sp)
  ld x20, 20*8(sp)
  ld x21, 21*8(sp)
  ld x22, 22*8(sp)
  ld x23, 23*8(sp)
  ld x24, 24*8(sp)
  ld x25, 25*8(sp)
  ld x26, 26*8(sp)
  ld x27, 27*8(sp)
  ld x28, 28*8(sp)
  ld x29, 29*8(sp)
  ld x30, 30*8(sp)
  ld x31, 31*8(sp)
  ld x2, 2*8(sp)
.endm

  .text
  .align 2
  .globl m_trap_entry
m_trap_entry:
  SAVE_FRAME mscratch
  csrr t0, mepc
  sd t0, FRAME_EPC(sp)
  mv a0, sp
  call m_trap_handler
  ld t0, FRAME_EPC(sp)
  csrw mepc, t0
  RESTORE_FRAME mscratch
  mret

  .align 2
  .globl s_trap_entry
s_trap_entry:
  SAVE_FRAME sscratch
  csrr t0, sepc
  sd t0, FRAME_EPC(sp)
  mv a0, sp
  call s_trap_handler
  ld t0, FRAME_EPC(sp)
  csrw sepc, t0
  RESTORE_FRAME sscratch
  sret

/*
 * long run_in_mode(long mode, long (*fn)(long), long arg): calls fn(arg) in privilege
 * `mode` (0 = U, 1 = S, 3 = M) via mret; fn's return ecalls back (RIM_MAGIC in a7) and
 * the M handler resumes at rim_resume in M-mode with fn's result in a0.
 */
  .globl run_in_mode
run_in_mode:
  la t0, rim_save
  sd ra, 0(t0)
  sd sp, 8(t0)
  sd gp, 16(t0)
  sd tp, 24(t0)
  sd s0, 32(t0)
  sd s1, 40(t0)
  sd s2, 48(t0)
  sd s3, 56(t0)
  sd s4, 64(t0)
  sd s5, 72(t0)
  sd s6, 80(t0)
  sd s7, 88(t0)
  sd s8, 96(t0)
  sd s9, 104(t0)
  sd s10, 112(t0)
  sd s11, 120(t0)
  csrw mepc, a1
  li t1, (3 << 11)
  csrc mstatus, t1
  andi a0, a0, 3
  slli a0, a0, 11
  csrs mstatus, a0
  mv a0, a2
  la ra, rim_lower_return
  mret
  .globl rim_lower_return
rim_lower_return:
  li a7, RIM_MAGIC
  ecall
1:
  j 1b

  .globl rim_resume
rim_resume:
  la t0, __mtrap_stack_top
  csrw mscratch, t0
  la t0, __strap_stack_top
  csrw sscratch, t0
  la t0, rim_save
  ld ra, 0(t0)
  ld sp, 8(t0)
  ld gp, 16(t0)
  ld tp, 24(t0)
  ld s0, 32(t0)
  ld s1, 40(t0)
  ld s2, 48(t0)
  ld s3, 56(t0)
  ld s4, 64(t0)
  ld s5, 72(t0)
  ld s6, 80(t0)
  ld s7, 88(t0)
  ld s8, 96(t0)
  ld s9, 104(t0)
  ld s10, 112(t0)
  ld s11, 120(t0)
  ret

  .bss
  .align 3
rim_save:
  .skip 16 * 8

/* HTIF mailbox: tohost at offset 0, fromhost at offset 8 of its own page (see link.ld). */
  .section .tohost, "aw", @progbits
  .align 6
  .globl tohost
  .type tohost, @object
  .size tohost, 8
tohost:
  .dword 0
  .globl fromhost
  .type fromhost, @object
  .size fromhost, 8
fromhost:
  .dword 0
