/*
 * Sdtrig triggers (the checks of riscv-tests' rv64mi-p-breakpoint, and more): tselect,
 * tdata1-tdata3 and tinfo; mcontrol (type 2) execute, load and store address matches in
 * M-mode that raise a breakpoint before the instruction or access (which is skipped, so a
 * store leaves memory unchanged); reads of a breakpointed instruction and stores to a
 * load-watched word do not fire; a second trigger; the U/S/M mode bits and delegation to
 * S; the size field; mcontrol6 (type 6); AMOs. tcontrol is optional (QEMU 7.2 has none):
 * when present its MTE bit is set first, as the riscv-tests program does. xtval is either 0
 * (QEMU 7.2) or the matching address (vmesh): both are allowed by the spec.
 */
#include "test.h"

#define TSELECT 0x7a0
#define TDATA1 0x7a1
#define TDATA2 0x7a2
#define TDATA3 0x7a3
#define TINFO 0x7a4
#define TCONTROL 0x7a5

#define TYPE2 (2ull << 60)
#define TYPE6 (6ull << 60)
#define LOAD (1ull << 0)
#define STORE (1ull << 1)
#define EXEC (1ull << 2)
#define MODE_U (1ull << 3)
#define MODE_S (1ull << 4)
#define MODE_M (1ull << 6)
#define SIZE_1B (1ull << 16)

#define EXPECT_BREAK(addr) do { CHECK(m_trap.count == 1); CHECK(m_trap.cause == CAUSE_BREAKPOINT); \
  CHECK(m_trap.tval == 0 || m_trap.tval == (u64)(addr)); } while (0)

static volatile u32 data1 __attribute__((aligned(8))) = 0x11;
static volatile u32 data2 __attribute__((aligned(8))) = 0x22;
static volatile u64 words[2] __attribute__((aligned(16)));

extern char bp_m[], bp_s[];

/* Runs the instruction at bp_m (an increment of its argument); a skipped one returns arg. */
__attribute__((noinline)) static long at_bp_m(long arg) {
  register long a0 __asm__("a0") = arg;
  __asm__ volatile(".option push\n.option norvc\n.globl bp_m\nbp_m: addi %0, %0, 1\n.option pop"
                   : "+r"(a0));
  return a0;
}

__attribute__((noinline)) static long at_bp_s(long arg) {
  register long a0 __asm__("a0") = arg;
  __asm__ volatile(".option push\n.option norvc\n.globl bp_s\nbp_s: addi %0, %0, 1\n.option pop"
                   : "+r"(a0));
  return a0;
}

static long load_data1(long arg) {
  (void)arg;
  return (long)data1;
}

static long read_tselect(long arg) {
  (void)arg;
  return (long)csr_read(TSELECT);
}

static void disable_all(void) {
  for (u64 i = 0; i < 2; i++) {
    csr_write(TSELECT, i);
    csr_write(TDATA1, TYPE2);
  }
  csr_write(TSELECT, 0);
}

static void arm(u64 tdata1, u64 addr) {
  csr_write(TDATA1, TYPE2); /* disable while changing the address */
  csr_write(TDATA2, addr);
  csr_write(TDATA1, tdata1);
  CHECK(csr_read(TDATA1) == tdata1);
}

int main(void) {
  /* tcontrol is optional: set MTE (bit 3) when it exists. */
  trap_reset();
  csr_set(TCONTROL, 1 << 3);
  CHECK(m_trap.count == 0 || m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);

  /* The trigger CSRs: two type-2 triggers, tinfo lists types 2 and 6. */
  trap_reset();
  csr_write(TSELECT, 0);
  CHECK(csr_read(TSELECT) == 0);
  CHECK(csr_read(TDATA1) >> 60 == 2);
  CHECK((csr_read(TINFO) & ((1 << 2) | (1 << 6))) == ((1 << 2) | (1 << 6)));
  CHECK(csr_read(TDATA3) == 0);
  csr_write(TSELECT, 1);
  CHECK(csr_read(TSELECT) == 1);
  CHECK(csr_read(TDATA1) >> 60 == 2);
  csr_write(TSELECT, 2); /* out of range: tselect keeps its value */
  CHECK(csr_read(TSELECT) == 1);
  csr_write(TSELECT, 0);
  csr_write(TDATA2, 0x123456789abcdef0ull);
  CHECK(csr_read(TDATA2) == 0x123456789abcdef0ull);
  CHECK(m_trap.count == 0);
  /* They are M-mode CSRs. */
  trap_reset();
  run_in_mode(PRV_S, read_tselect, 0);
  CHECK(m_trap.count == 1 && m_trap.cause == CAUSE_ILLEGAL_INSTRUCTION);

  /* Execute in M-mode: the breakpoint comes before the instruction, which is skipped. */
  arm(TYPE2 | MODE_M | EXEC, (u64)bp_m);
  trap_reset();
  CHECK(at_bp_m(5) == 5);
  EXPECT_BREAK(bp_m);
  CHECK(m_trap.epc == (u64)bp_m);
  /* Reading the instruction's bytes does not fire an execute trigger. */
  trap_reset();
  CHECK(*(volatile u32 *)bp_m != 0);
  CHECK(m_trap.count == 0);

  /* Load in M-mode: the load is skipped (a2 keeps the address), stores do not fire. */
  arm(TYPE2 | MODE_M | LOAD, (u64)&data1);
  trap_reset();
  {
    register u64 a2 __asm__("a2") = (u64)&data1;
    __asm__ volatile(".option push\n.option norvc\nlw %0, 0(%0)\n.option pop" : "+r"(a2) :: "memory");
    CHECK(a2 == (u64)&data1);
  }
  EXPECT_BREAK(&data1);
  trap_reset();
  data1 = 0x33;
  CHECK(m_trap.count == 0);

  /* Store in M-mode: the store does not happen. */
  arm(TYPE2 | MODE_M | STORE, (u64)&data1);
  trap_reset();
  data1 = 0x44;
  EXPECT_BREAK(&data1);
  CHECK(data1 == 0x33);
  trap_reset();
  CHECK(data1 == 0x33); /* loads do not fire a store trigger */
  CHECK(m_trap.count == 0);

  /* A second trigger fires on its own word; the first keeps firing on its. */
  arm(TYPE2 | MODE_M | LOAD, (u64)&data1);
  csr_write(TSELECT, 1);
  arm(TYPE2 | MODE_M | LOAD, (u64)&data2);
  trap_reset();
  (void)data2;
  EXPECT_BREAK(&data2);
  trap_reset();
  (void)data1;
  EXPECT_BREAK(&data1);
  disable_all();
  trap_reset();
  (void)data1;
  (void)data2;
  CHECK(m_trap.count == 0);

  /* Mode bits: an S-only trigger is silent in M and fires in S; U fires in U. */
  arm(TYPE2 | MODE_S | EXEC, (u64)bp_s);
  trap_reset();
  CHECK(at_bp_s(7) == 8);
  CHECK(m_trap.count == 0);
  CHECK(run_in_mode(PRV_S, at_bp_s, 7) == 7);
  EXPECT_BREAK(bp_s);
  CHECK(m_trap.prev_priv == PRV_S);
  arm(TYPE2 | MODE_U | LOAD, (u64)&data1);
  trap_reset();
  (void)data1;
  CHECK(m_trap.count == 0);
  run_in_mode(PRV_U, load_data1, 0);
  EXPECT_BREAK(&data1);
  CHECK(m_trap.prev_priv == PRV_U);
  /* Delegated with medeleg: the breakpoint goes to S. */
  arm(TYPE2 | MODE_S | EXEC, (u64)bp_s);
  csr_write(medeleg, 1 << CAUSE_BREAKPOINT);
  trap_reset();
  CHECK(run_in_mode(PRV_S, at_bp_s, 1) == 1);
  CHECK(m_trap.count == 0);
  CHECK(s_trap.count == 1 && s_trap.cause == CAUSE_BREAKPOINT && s_trap.epc == (u64)bp_s);
  CHECK(s_trap.tval == 0 || s_trap.tval == (u64)bp_s);
  csr_write(medeleg, 0);

  /* Size: a 1-byte match fires for an access covering that byte only. */
  arm(TYPE2 | MODE_M | LOAD | SIZE_1B, (u64)&words[1]);
  trap_reset();
  (void)*(volatile unsigned char *)((char *)&words[1] + 1);
  CHECK(m_trap.count == 0);
  (void)*(volatile u32 *)((char *)&words[1]);
  EXPECT_BREAK(&words[1]);
  /* Size "any" watches 8 bytes: a load ending just below does not fire, one overlapping does. */
  arm(TYPE2 | MODE_M | LOAD, (u64)&words[1]);
  trap_reset();
  (void)words[0];
  CHECK(m_trap.count == 0);
  (void)*(volatile unsigned char *)((char *)&words[1] + 7);
  CHECK(m_trap.count == 1 && m_trap.cause == CAUSE_BREAKPOINT);

  /* mcontrol6 (type 6) load trigger. */
  csr_write(TDATA1, TYPE6 | MODE_M | LOAD);
  CHECK(csr_read(TDATA1) == (TYPE6 | MODE_M | LOAD));
  trap_reset();
  (void)words[1];
  EXPECT_BREAK(&words[1]);
  /* An unsupported type is not taken: tdata1 keeps its value. */
  csr_write(TDATA1, 3ull << 60);
  CHECK(csr_read(TDATA1) == (TYPE6 | MODE_M | LOAD));

  /* An AMO is a load and a store. */
  arm(TYPE2 | MODE_M | STORE, (u64)&words[1]);
  words[1] = 0; /* fires: skipped */
  trap_reset();
  {
    u64 old;
    __asm__ volatile("amoadd.d %0, %1, (%2)" : "=r"(old) : "r"(1ull), "r"(&words[1]) : "memory");
  }
  EXPECT_BREAK(&words[1]);

  disable_all();
  trap_reset();
  CHECK(at_bp_m(1) == 2);
  (void)data1;
  data1 = 0;
  CHECK(m_trap.count == 0);
  return 0;
}
