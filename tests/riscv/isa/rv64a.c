/* RV64A: LR/SC success and failure, every AMO in .w and .d forms (old value, new memory). */
#include "ops.h"

static volatile u64 mem[4] __attribute__((aligned(16)));
static volatile u32 *const mem32 = (volatile u32 *)mem;

#define AMO_D(op, init, operand, expect_mem) do { \
  mem[0] = (init); \
  CHECK(AMO(op ".d", operand, mem) == (u64)(init)); \
  CHECK(mem[0] == (u64)(expect_mem)); \
} while (0)

/* .w: old value sign-extended; only the low word changes */
#define AMO_W(op, init, operand, expect_mem) do { \
  mem[0] = 0x5555555500000000ull | (u32)(init); \
  CHECK(AMO(op ".w", operand, mem) == (u64)(i64)(i32)(u32)(init)); \
  CHECK(mem32[0] == (u32)(expect_mem)); \
  CHECK(mem32[1] == 0x55555555); \
} while (0)

static u64 lr_d(volatile u64 *p) {
  u64 v;
  __asm__ volatile("lr.d %0, (%1)" : "=r"(v) : "r"(p) : "memory");
  return v;
}
static u64 sc_d(volatile u64 *p, u64 v) {
  u64 r;
  __asm__ volatile("sc.d %0, %1, (%2)" : "=&r"(r) : "r"(v), "r"(p) : "memory");
  return r;
}
static u64 lr_w(volatile u32 *p) {
  u64 v;
  __asm__ volatile("lr.w %0, (%1)" : "=r"(v) : "r"(p) : "memory");
  return v;
}
static u64 sc_w(volatile u32 *p, u64 v) {
  u64 r;
  __asm__ volatile("sc.w %0, %1, (%2)" : "=&r"(r) : "r"(v), "r"(p) : "memory");
  return r;
}

int main(void) {
  AMO_D("amoswap", 0x1111222233334444ull, 0xaaaabbbbccccddddull, 0xaaaabbbbccccddddull);
  AMO_D("amoadd", 0xffffffffffffffffull, 2, 1);
  AMO_D("amoxor", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull, 0xf0f0f0f0f0f0f0f0ull);
  AMO_D("amoand", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull, 0x0f000f000f000f00ull);
  AMO_D("amoor", 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull, 0xfff0fff0fff0fff0ull);
  AMO_D("amomin", 5, -3, -3);
  AMO_D("amomin", -3, 5, -3);
  AMO_D("amomax", -3, 5, 5);
  AMO_D("amomax", 0x8000000000000000ull, 0x7fffffffffffffffull, 0x7fffffffffffffffull);
  AMO_D("amominu", 5, -3, 5);
  AMO_D("amomaxu", 5, -3, -3);
  AMO_D("amomaxu", -1, 0, -1);

  AMO_W("amoswap", 0x80000001u, 0x1234567887654321ull, 0x87654321u);
  AMO_W("amoadd", 0x7fffffffu, 1, 0x80000000u);
  AMO_W("amoadd", 0xffffffffu, 0xffffffff00000001ull, 0);
  AMO_W("amoxor", 0xff00ff00u, 0x0ff00ff0u, 0xf0f0f0f0u);
  AMO_W("amoand", 0xff00ff00u, 0x0ff00ff0u, 0x0f000f00u);
  AMO_W("amoor", 0xff00ff00u, 0x0ff00ff0u, 0xfff0fff0u);
  AMO_W("amomin", 0x80000000u, 0x7fffffffu, 0x80000000u); /* signed 32-bit compare */
  AMO_W("amomin", 5, 0xfffffffffffffffdull, 0xfffffffdu);
  AMO_W("amomin", 5, 0x00000000fffffffdull, 0xfffffffdu); /* upper operand bits ignored */
  AMO_W("amomax", 0x80000000u, 0x7fffffffu, 0x7fffffffu);
  AMO_W("amominu", 0x80000000u, 0x7fffffffu, 0x7fffffffu);
  AMO_W("amomaxu", 0x80000000u, 0x7fffffffu, 0x80000000u);
  AMO_W("amomaxu", 1, 0xffffffff00000000ull, 1);

  /* ordering bits do not change results */
  mem[0] = 10;
  CHECK(AMO("amoadd.d.aqrl", 5, mem) == 10);
  CHECK(AMO("amoadd.w.aq", 5, mem) == 15);
  CHECK(AMO("amoswap.d.rl", 1, mem) == 20);

  /* LR/SC success */
  mem[1] = 0x1234;
  CHECK(lr_d(&mem[1]) == 0x1234);
  CHECK(sc_d(&mem[1], 0x5678) == 0);
  CHECK(mem[1] == 0x5678);
  /* SC without a reservation (it was consumed by the previous SC) fails, memory unchanged */
  CHECK(sc_d(&mem[1], 0x9999) != 0);
  CHECK(mem[1] == 0x5678);
  /* SC to a different address than the LR fails */
  mem[2] = 1;
  lr_d(&mem[1]);
  CHECK(sc_d(&mem[2], 7) != 0);
  CHECK(mem[2] == 1);
  /* word forms: loaded value sign-extends */
  mem[3] = 0x00000000fffffffeull;
  volatile u32 *w = (volatile u32 *)&mem[3];
  CHECK(lr_w(w) == 0xfffffffffffffffeull);
  CHECK(sc_w(w, 0x1122334455667788ull) == 0);
  CHECK(mem[3] == 0x55667788ull);
  CHECK(sc_w(w, 3) != 0);
  CHECK(mem[3] == 0x55667788ull);
  /* an LR/SC increment loop */
  mem[0] = 0;
  for (int i = 0; i < 100; i++) {
    u64 v;
    do {
      v = lr_d(&mem[0]);
    } while (sc_d(&mem[0], v + 3) != 0);
  }
  CHECK(mem[0] == 300);
  return 0;
}
