/* RV64M: multiply high parts, division by zero and signed overflow corners, W forms. */
#include "ops.h"

#define MIN64 0x8000000000000000ull
#define MAX64 0x7fffffffffffffffull
#define ALL1 0xffffffffffffffffull

int main(void) {
  CHECK(RR("mul", 7, ALL1) == (u64)-7);
  CHECK(RR("mul", 0x100000001ull, 0x100000001ull) == 0x200000001ull);
  CHECK(RR("mulh", ALL1, ALL1) == 0);
  CHECK(RR("mulh", MIN64, MIN64) == 0x4000000000000000ull);
  CHECK(RR("mulh", MIN64, 2) == ALL1);
  CHECK(RR("mulh", MAX64, MAX64) == 0x3fffffffffffffffull);
  CHECK(RR("mulhu", ALL1, ALL1) == 0xfffffffffffffffeull);
  CHECK(RR("mulhu", MIN64, 4) == 2);
  CHECK(RR("mulhsu", ALL1, ALL1) == ALL1);
  CHECK(RR("mulhsu", MIN64, 2) == ALL1);
  CHECK(RR("mulhsu", 2, ALL1) == 1);
  CHECK(RR("mulhsu", MAX64, ALL1) == 0x7ffffffffffffffeull);
  CHECK(RR("mulw", 0x7fffffff, 2) == (u64)-2);
  CHECK(RR("mulw", 0x123456789ull, 0x100000000ull) == 0);
  CHECK(RR("mulw", 0x10000, 0x10000) == 0);

  CHECK(RR("div", (u64)-7, 2) == (u64)-3); /* rounds towards zero */
  CHECK(RR("rem", (u64)-7, 2) == (u64)-1); /* sign of the dividend */
  CHECK(RR("div", 7, (u64)-2) == (u64)-3);
  CHECK(RR("rem", 7, (u64)-2) == 1);
  CHECK(RR("divu", ALL1, 2) == MAX64);
  CHECK(RR("remu", ALL1, 10) == 5);
  /* division by zero */
  CHECK(RR("div", 42, 0) == ALL1);
  CHECK(RR("div", (u64)-42, 0) == ALL1);
  CHECK(RR("divu", 42, 0) == ALL1);
  CHECK(RR("rem", (u64)-42, 0) == (u64)-42);
  CHECK(RR("remu", 42, 0) == 42);
  /* signed overflow */
  CHECK(RR("div", MIN64, ALL1) == MIN64);
  CHECK(RR("rem", MIN64, ALL1) == 0);
  /* W forms: 32-bit operands, sign-extended results */
  CHECK(RR("divw", 0xffffffff00000007ull, 0x2) == 3);
  CHECK(RR("divw", (u64)-7, 2) == (u64)-3);
  CHECK(RR("divuw", 0xffffffff, 2) == 0x7fffffff);
  CHECK(RR("divuw", 0xffffffff, 1) == ALL1); /* 0xffffffff sign-extends */
  CHECK(RR("remw", (u64)-7, 2) == (u64)-1);
  CHECK(RR("remuw", 0xfffffff5, 0x10) == 5);
  CHECK(RR("remuw", 0x80000000, 0x100000000ull) == 0xffffffff80000000ull); /* divisor 0 */
  CHECK(RR("divw", 5, 0) == ALL1);
  CHECK(RR("divuw", 5, 0x100000000ull) == ALL1);
  CHECK(RR("remw", 0x180000000ull, 0) == 0xffffffff80000000ull);
  CHECK(RR("divw", 0x80000000, ALL1) == 0xffffffff80000000ull);
  CHECK(RR("remw", 0x80000000, ALL1) == 0);
  return 0;
}
