/**
 * A tiny guest program run once per process on a throwaway hart before the first real one
 * starts (see `warmUpInterpreter` in hart.ts). It executes every instruction kind of the
 * interpreter's loop once in M-mode and once in S-mode under Sv39 (ALU, M, 32-bit forms,
 * branches both ways, aligned/misaligned/page-crossing loads and stores, A, CSRs, F/D, traps)
 * and then idles in WFI with s11 = 0x600d.
 *
 * Why: V8 compiles the interpreter's big switch only for paths that already ran; each path
 * first met later (during a Linux boot, dozens) throws the optimized code away and the hart
 * runs slowly until it is recompiled. Running every path once up front avoids that.
 *
 * Built from WARMUP_SOURCE with `riscv64-unknown-elf-gcc -nostdlib -march=rv64gc -mabi=lp64d
 * -Wl,-Ttext=0x80000000 -Wl,--no-relax`, then `objcopy -O binary`; `warmup_program_test.ts`
 * rebuilds it and checks these words are what the source assembles to.
 */

/** Assembly source of the program. */
export const WARMUP_SOURCE =
  `# Interpreter warm-up program (see services/cpu/hart/warmup_program.ts): touches every instruction
# kind once in M-mode and once in S-mode under Sv39, then idles in WFI.
.globl _start
_start:
  la t0, trap
  csrw mtvec, t0
  li t0, 0x2000            # mstatus.FS = initial
  csrs mstatus, t0
  csrw fcsr, zero
  li t0, -1                # PMP: S-mode may access everything
  csrw pmpaddr0, t0
  li t0, 0x1f
  csrw pmpcfg0, t0
  la sp, stack_top
  call body
  # Sv39: one 1 GiB identity leaf for 0x80000000 (VPN2 = 2), RWXAD.
  la t0, ptable
  li t1, (0x80000000 >> 12) << 10 | 0xcf
  sd t1, 16(t0)
  li t1, 0xcf
  sd t1, 0(t0)
  srli t0, t0, 12
  li t1, 8 << 60
  or t0, t0, t1
  csrw satp, t0
  sfence.vma
  li t0, 0x1800            # MPP = S
  csrc mstatus, t0
  li t0, 0x0800
  csrs mstatus, t0
  li t0, 1 << 3            # breakpoints go to S-mode
  csrw medeleg, t0
  la t0, strap
  csrw stvec, t0
  li t0, 2                 # SSIP enabled and pending: an M-mode interrupt once in S
  csrs mie, t0
  csrs mip, t0
  la t0, smode
  csrw mepc, t0
  mret
smode:
  call body
  li a7, 99
  ecall                    # back to M (handler sees a7 = 99)
done:
  csrw satp, zero
  li s11, 0x600d
1: wfi
  j 1b

body:
  addi sp, sp, -16
  sd ra, 8(sp)
  li s0, 0
  li s1, 3
0:
  li a0, -7
  li a1, 0x123456789abcdef
  li a2, -0x100000000
  li a3, 5
  li a4, 0
  # OP-IMM
  addi t0, a0, -1
  addi t0, a1, 2047
  slli t1, a1, 3
  slli t1, a1, 35
  slli t1, a1, 0
  slti t2, a0, 1
  slti t2, a1, -1
  sltiu t2, a0, 1
  sltiu t2, a4, 1
  xori t3, a1, -1
  srli t4, a0, 4
  srli t4, a0, 40
  srli t4, a0, 0
  srai t4, a0, 4
  srai t4, a2, 40
  srai t4, a2, 0
  ori t5, a0, 7
  andi t6, a1, 0x7f
  # OP
  add t0, a0, a1
  add t0, a2, a2
  sub t0, a0, a1
  sub t0, a4, a3
  sll t1, a1, a3
  sll t1, a1, a2
  li t3, 40
  sll t1, a1, t3
  slt t2, a0, a1
  slt t2, a1, a0
  sltu t2, a0, a1
  sltu t2, a1, a0
  xor t3, a0, a1
  li t3, 40
  srl t4, a0, a3
  srl t4, a0, t3
  srl t4, a0, a4
  sra t4, a0, a3
  sra t4, a2, t3
  sra t4, a2, a4
  or t5, a0, a1
  and t6, a0, a1
  mul t0, a0, a1
  mulh t0, a0, a1
  mulhsu t0, a0, a1
  mulhu t0, a0, a1
  div t0, a1, a0
  div t0, a1, a4
  divu t0, a1, a3
  divu t0, a1, a4
  rem t0, a1, a0
  rem t0, a1, a4
  remu t0, a1, a3
  remu t0, a1, a4
  li t1, -1
  slli t2, t1, 63
  div t0, t2, t1
  rem t0, t2, t1
  # comparisons whose high words are equal
  slti t2, a3, 7
  sltiu t2, a3, 7
  slti t2, a0, -1
  sltiu t2, a0, -1
  slt t2, a3, a4
  sltu t2, a4, a3
  blt a4, a3, 1f
1: bge a4, a3, 1f
1: bltu a3, a4, 1f
1: bgeu a3, a4, 1f
1: blt a0, a0, 1f
1: bltu a0, a0, 1f
1: call crossing
  # 32-bit
  addiw t0, a0, 9
  addiw t0, a1, -9
  slliw t0, a1, 5
  srliw t0, a0, 5
  sraiw t0, a0, 5
  addw t0, a0, a1
  subw t0, a0, a1
  sllw t0, a1, a3
  srlw t0, a0, a3
  sraw t0, a0, a3
  mulw t0, a0, a1
  divw t0, a1, a0
  divw t0, a1, a4
  divuw t0, a1, a3
  divuw t0, a1, a4
  remw t0, a1, a0
  remw t0, a1, a4
  remuw t0, a1, a3
  remuw t0, a1, a4
  lui t0, 0x80000
  lui t0, 0x12345
  auipc t0, 0
  auipc t0, 0xfffff
  # branches, both ways
  beq a0, a0, 1f
1: beq a0, a1, 1f
1: bne a0, a1, 1f
1: bne a0, a0, 1f
1: blt a0, a1, 1f
1: blt a1, a0, 1f
1: bge a0, a1, 1f
1: bge a1, a0, 1f
1: bltu a0, a1, 1f
1: bltu a1, a0, 1f
1: bgeu a0, a1, 1f
1: bgeu a1, a0, 1f
1: beqz a4, 1f
1: bnez a4, 1f
1: la t0, 1f
  jalr t1, 0(t0)
1: la t0, 1f
  jr t0
1: jal t1, 1f
1:
  # loads and stores, aligned, misaligned, across a page
  la t0, buf
  sd a1, 0(t0)
  sw a0, 8(t0)
  sh a0, 12(t0)
  sb a0, 14(t0)
  ld t1, 0(t0)
  lw t1, 8(t0)
  lwu t1, 8(t0)
  lh t1, 12(t0)
  lhu t1, 12(t0)
  lb t1, 14(t0)
  lbu t1, 14(t0)
  sd a1, 3(t0)
  sw a1, 5(t0)
  sh a1, 7(t0)
  ld t1, 3(t0)
  lw t1, 5(t0)
  lwu t1, 5(t0)
  lh t1, 7(t0)
  lhu t1, 7(t0)
  la t2, edge
  sd a1, -4(t2)
  ld t1, -4(t2)
  # MMIO (the warm-up bus answers at 0x10000000) and unmapped addresses (the trap
  # handlers clobber t0-t2, so the base lives in s2)
  li s2, 0x10000000
  lw t1, 0(s2)
  ld t1, 0(s2)
  lbu t1, 1(s2)
  lb t1, 1(s2)
  lhu t1, 2(s2)
  lwu t1, 0(s2)
  lh t1, 2(s2)
  sw t1, 0(s2)
  sd t1, 0(s2)
  sb t1, 1(s2)
  sh t1, 2(s2)
  li s2, 0x40000000
  lw t1, 0(s2)
  sd t1, 0(s2)
  jalr ra, 0(s2)           # fetch fault: the handler returns to ra
  la t0, buf
  # atomics
  amoadd.w t1, a3, (t0)
  amoadd.d t1, a3, (t0)
  amoswap.w t1, a3, (t0)
  amoswap.d t1, a3, (t0)
  amoand.d t1, a0, (t0)
  amoor.d t1, a0, (t0)
  amoxor.w t1, a0, (t0)
  amomin.d t1, a0, (t0)
  amomax.w t1, a0, (t0)
  amominu.d t1, a0, (t0)
  amomaxu.w t1, a0, (t0)
  addi t2, t0, 1
  amoadd.w t1, a3, (t2)    # misaligned: a fault
  la t0, buf
  lr.d t1, (t0)
  sc.d t2, a1, (t0)
  sc.d t2, a1, (t0)
  lr.w t1, (t0)
  sc.w t2, a1, (t0)
  # CSRs and counters
  csrr t1, mscratch
  csrw mscratch, a0
  csrs mscratch, a3
  csrc mscratch, a3
  csrwi mscratch, 5
  csrsi mscratch, 2
  csrci mscratch, 1
  rdcycle t1
  rdinstret t1
  rdtime t1
  csrr t1, sstatus
  csrr t1, fflags
  frrm t1
  # floating point
  la t0, fbuf
  fld fa0, 0(t0)
  fld fa1, 8(t0)
  flw fa2, 16(t0)
  flw fa3, 20(t0)
  fadd.d fa4, fa0, fa1
  fsub.d fa4, fa0, fa1
  fmul.d fa4, fa0, fa1
  fdiv.d fa4, fa0, fa1
  fsqrt.d fa4, fa1
  fmadd.d fa4, fa0, fa1, fa0
  fadd.s fa5, fa2, fa3
  fmul.s fa5, fa2, fa3
  fdiv.s fa5, fa2, fa3
  fsqrt.s fa5, fa3
  fmadd.s fa5, fa2, fa3, fa2
  fmin.d fa4, fa0, fa1
  fmax.s fa5, fa2, fa3
  fsgnj.d fa4, fa0, fa1
  fsgnjn.s fa5, fa2, fa3
  feq.d t1, fa0, fa1
  flt.d t1, fa0, fa1
  fle.s t1, fa2, fa3
  fclass.d t1, fa0
  fcvt.l.d t1, fa0
  fcvt.w.s t1, fa2
  fcvt.d.l fa4, a1
  fcvt.s.w fa5, a0
  fcvt.d.s fa4, fa2
  fcvt.s.d fa5, fa0
  fmv.x.d t1, fa0
  fmv.d.x fa4, a1
  fmv.x.w t1, fa2
  fmv.w.x fa5, a0
  fsd fa4, 24(t0)
  fsw fa5, 32(t0)
  .insn r OP_FP, 5, 1, fa4, fa0, fa1   # fadd.d with a reserved rounding mode
  # traps: ecall, ebreak, illegal
  li a7, 0
  ecall
  ebreak
  .word 0
  fence
  fence.i
  addi s0, s0, 1
  bne s0, s1, 0b
  ld ra, 8(sp)
  addi sp, sp, 16
  ret

# Skips the trapping instruction; an ecall with a7 = 99 ends the run in M-mode.
trap:
  csrr t0, mcause
  bgez t0, 3f
  li t0, 2                 # the SSIP interrupt: clear it and resume
  csrc mip, t0
  mret
3: li t1, 1
  beq t0, t1, 4f
  li t1, 12
  bne t0, t1, 5f
4: csrw mepc, ra           # fetch fault: resume at the return address
  mret
5:
  li t1, 9
  bne t0, t1, 1f
  li t1, 99
  bne a7, t1, 1f
  la t0, done
  csrw mepc, t0
  li t0, 0x1800
  csrs mstatus, t0
  mret
1: csrr t0, mepc
  lhu t1, 0(t0)
  andi t1, t1, 3
  li t2, 3
  addi t0, t0, 2
  bne t1, t2, 2f
  addi t0, t0, 2
2: csrw mepc, t0
  mret

# S-mode handler for delegated breakpoints: skip the instruction.
strap:
  csrr t0, sepc
  lhu t1, 0(t0)
  andi t1, t1, 3
  li t2, 3
  addi t0, t0, 2
  bne t1, t2, 2f
  addi t0, t0, 2
2: csrw sepc, t0
  sret

.data
.balign 8
fbuf: .double 1.5, -3.25
  .float 2.5, 0.75
  .dword 0, 0, 0
buf: .dword 0, 0, 0, 0
.balign 4096
ptable: .zero 4096
edge: .zero 8
  .zero 256
stack_top:
# A 32-bit instruction straddling a page boundary (fetched in two halves).
.section .cross, "ax"
.option norvc
crossing:
  addi t1, t1, 1
  ret
`;

/** Bytes of RAM the program needs (it ends with an instruction straddling 0x80004000). */
export const WARMUP_RAM = 0x8000;

/** The program image as [offset from DRAM_BASE, little-endian words]; the rest is zero. */
export const WARMUP_IMAGE: readonly (readonly [number, readonly number[]])[] = [
  [0x0, [
    0x00000297,
    0x49828293,
    0x30529073,
    0xa0736289,
    0x10733002,
    0x52fd0030,
    0x3b029073,
    0x907342fd,
    0x31173a02,
    0x01130000,
    0x00970e61,
    0x80e70000,
    0x22970980,
    0x82930000,
    0x0337fce2,
    0x031b2000,
    0xb8230cf3,
    0x03130062,
    0xb0230cf0,
    0xd2930062,
    0x031b00c2,
    0x137efff0,
    0x0062e2b3,
    0x18029073,
    0x12000073,
    0x829b6289,
    0xb0738002,
    0x62853002,
    0x8002829b,
    0x3002a073,
    0x907342a1,
    0x02973022,
    0x82930000,
    0x90734862,
    0x42891052,
    0x3042a073,
    0x3442a073,
    0x00000297,
    0x01028293,
    0x34129073,
    0x30200073,
    0x00000097,
    0x01e080e7,
    0x06300893,
    0x00000073,
    0x18001073,
    0x2db56d99,
    0x10500073,
    0x1141bff5,
    0x4401e406,
    0x5565448d,
    0x000925b7,
    0xa2b5859b,
    0x859305b2,
    0x05b63c55,
    0xabd58593,
    0x859305b2,
    0x061bdef5,
    0x1602fff0,
    0x47014695,
    0xfff50293,
    0x7ff58293,
    0x00359313,
    0x02359313,
    0x00059313,
    0x00152393,
    0xfff5a393,
    0x00153393,
    0x00173393,
    0xfff5ce13,
    0x00455e93,
    0x02855e93,
    0x00055e93,
    0x40455e93,
    0x42865e93,
    0x40065e93,
    0x00756f13,
    0x07f5ff93,
    0x00b502b3,
    0x00c602b3,
    0x40b502b3,
    0x40d702b3,
    0x00d59333,
    0x00c59333,
    0x02800e13,
    0x01c59333,
    0x00b523b3,
    0x00a5a3b3,
    0x00b533b3,
    0x00a5b3b3,
    0x00b54e33,
    0x02800e13,
    0x00d55eb3,
    0x01c55eb3,
    0x00e55eb3,
    0x40d55eb3,
    0x41c65eb3,
    0x40e65eb3,
    0x00b56f33,
    0x00b57fb3,
    0x02b502b3,
    0x02b512b3,
    0x02b522b3,
    0x02b532b3,
    0x02a5c2b3,
    0x02e5c2b3,
    0x02d5d2b3,
    0x02e5d2b3,
    0x02a5e2b3,
    0x02e5e2b3,
    0x02d5f2b3,
    0x02e5f2b3,
    0x1393537d,
    0xc2b303f3,
    0xe2b30263,
    0xa3930263,
    0xb3930076,
    0x23930076,
    0x3393fff5,
    0xa3b3fff5,
    0x33b300e6,
    0x426300d7,
    0x526300d7,
    0xe26300d7,
    0xf26300e6,
    0x426300e6,
    0x626300a5,
    0x409700a5,
    0x80e70000,
    0x029be000,
    0x829b0095,
    0x929bff75,
    0x529b0055,
    0x529b0055,
    0x02bb4055,
    0x02bb00b5,
    0x92bb40b5,
    0x52bb00d5,
    0x52bb00d5,
    0x02bb40d5,
    0xc2bb02b5,
    0xc2bb02a5,
    0xd2bb02e5,
    0xd2bb02d5,
    0xe2bb02e5,
    0xe2bb02a5,
    0xf2bb02e5,
    0xf2bb02d5,
    0x02b702e5,
    0x52b78000,
    0x02971234,
    0xf2970000,
    0x0263ffff,
    0x026300a5,
    0x126300b5,
    0x126300b5,
    0x426300a5,
    0xc26300b5,
    0x526300a5,
    0xd26300b5,
    0x626300a5,
    0xe26300b5,
    0x726300a5,
    0xf26300b5,
    0xc30900a5,
    0x0297e309,
    0x82930000,
    0x836700c2,
    0x02970002,
    0x82930000,
    0x828200a2,
    0x0040036f,
    0x00001297,
    0xd8028293,
    0x00b2b023,
    0x00a2a423,
    0x00a29623,
    0x00a28723,
    0x0002b303,
    0x0082a303,
    0x0082e303,
    0x00c29303,
    0x00c2d303,
    0x00e28303,
    0x00e2c303,
    0x00b2b1a3,
    0x00b2a2a3,
    0x00b293a3,
    0x0032b303,
    0x0052a303,
    0x0052e303,
    0x00729303,
    0x0072d303,
    0x00003397,
    0xcfc38393,
    0xfeb3be23,
    0xffc3b303,
    0x10000937,
    0x00092303,
    0x00093303,
    0x00194303,
    0x00190303,
    0x00295303,
    0x00096303,
    0x00291303,
    0x00692023,
    0x00693023,
    0x006900a3,
    0x00691123,
    0x40000937,
    0x00092303,
    0x00693023,
    0x000900e7,
    0x00001297,
    0xcdc28293,
    0x00d2a32f,
    0x00d2b32f,
    0x08d2a32f,
    0x08d2b32f,
    0x60a2b32f,
    0x40a2b32f,
    0x20a2a32f,
    0x80a2b32f,
    0xa0a2a32f,
    0xc0a2b32f,
    0xe0a2a32f,
    0x00128393,
    0x00d3a32f,
    0x00001297,
    0xca028293,
    0x1002b32f,
    0x18b2b3af,
    0x18b2b3af,
    0x1002a32f,
    0x18b2a3af,
    0x34002373,
    0x34051073,
    0x3406a073,
    0x3406b073,
    0x3402d073,
    0x34016073,
    0x3400f073,
    0xc0002373,
    0xc0202373,
    0xc0102373,
    0x10002373,
    0x00102373,
    0x00202373,
    0x00001297,
    0xc2028293,
    0x0002b507,
    0x0082b587,
    0x0102a607,
    0x0142a687,
    0x02b57753,
    0x0ab57753,
    0x12b57753,
    0x1ab57753,
    0x5a05f753,
    0x52b57743,
    0x00d677d3,
    0x10d677d3,
    0x18d677d3,
    0x5806f7d3,
    0x60d677c3,
    0x2ab50753,
    0x28d617d3,
    0x22b50753,
    0x20d617d3,
    0xa2b52353,
    0xa2b51353,
    0xa0d60353,
    0xe2051353,
    0xc2257353,
    0xc0067353,
    0xd225f753,
    0xd00577d3,
    0x42060753,
    0x401577d3,
    0xe2050353,
    0xf2058753,
    0xe0060353,
    0xf00507d3,
    0x00e2bc27,
    0x02f2a027,
    0x02b55753,
    0x00734881,
    0x90020000,
    0x00000000,
    0x0ff0000f,
    0x0000100f,
    0x1ee30405,
    0x60a2c294,
    0x80820141,
    0x342022f3,
    0x0002d763,
    0xb0734289,
    0x00733442,
    0x43053020,
    0x00628563,
    0x96634331,
    0x90730062,
    0x00733410,
    0x43253020,
    0x02629363,
    0x06300313,
    0x00689f63,
    0x00000297,
    0xbe828293,
    0x34129073,
    0x829b6289,
    0xa0738002,
    0x00733002,
    0x22f33020,
    0xd3033410,
    0x73130002,
    0x438d0033,
    0x13630289,
    0x02890073,
    0x34129073,
    0x30200073,
    0x141022f3,
    0x0002d303,
    0x00337313,
    0x0289438d,
    0x00731363,
    0x90730289,
    0x00731412,
    0x00001020,
  ]],
  [0x1004, [
    0x3ff80000,
    0x00000000,
    0xc00a0000,
    0x40200000,
    0x3f400000,
  ]],
  [0x3ffc, [
    0x03130000,
    0x80670013,
  ]],
];
