/* Inline-asm wrappers that run exactly one named instruction (uncompressed) on operands. */
#ifndef VMESH_OPS_H
#define VMESH_OPS_H

#include "test.h"

#define NORVC ".option push\n.option norvc\n"
#define POPRVC "\n.option pop\n"

/* rd = op(rs1, rs2) */
#define RR(op, a, b) ({ u64 r_; __asm__ volatile(NORVC op " %0, %1, %2" POPRVC \
  : "=r"(r_) : "r"((u64)(a)), "r"((u64)(b))); r_; })
/* rd = op(rs1, imm) */
#define RI(op, a, imm) ({ u64 r_; __asm__ volatile(NORVC op " %0, %1, %2" POPRVC \
  : "=r"(r_) : "r"((u64)(a)), "i"(imm)); r_; })
/* 1 when branch `op rs1, rs2` is taken */
#define BR(op, a, b) ({ u64 t_; __asm__ volatile(NORVC "li %0, 1\n" op " %1, %2, 1f\nli %0, 0\n1:" POPRVC \
  : "=&r"(t_) : "r"((u64)(a)), "r"((u64)(b))); t_; })
/* rd = load op at address p */
#define LD(op, p) ({ u64 r_; __asm__ volatile(NORVC op " %0, 0(%1)" POPRVC \
  : "=r"(r_) : "r"(p) : "memory"); r_; })
/* store op of v at address p */
#define ST(op, v, p) __asm__ volatile(NORVC op " %0, 0(%1)" POPRVC :: "r"((u64)(v)), "r"(p) : "memory")
/* rd = amo op(rs2 = v) at address p */
#define AMO(op, v, p) ({ u64 r_; __asm__ volatile(op " %0, %1, (%2)" \
  : "=r"(r_) : "r"((u64)(v)), "r"(p) : "memory"); r_; })

#endif
