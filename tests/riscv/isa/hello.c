/* Smallest program: HTIF console output and a clean exit. */
#include "test.h"

int main(void) {
  htif_puts("hello from bare metal\n");
  return 0;
}
