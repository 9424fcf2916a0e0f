/* The program the GDB stub test debugs: a function to break in, globals to read and write,
 * a loop a debugger can release, and an exit code that shows a register write took effect. */
#include "test.h"

volatile long counter;
/* A debugger sets it to hold main in a loop (for Ctrl-C); in .data, which crt does not clear. */
volatile long spin __attribute__((section(".data")));

long __attribute__((noinline)) work(long n) {
  long s = 0;
  for (long i = 0; i < n; i++) s += i;
  return s;
}

int main(void) {
  counter = 41;
  while (spin) counter = 41;
  long r = work(10);
  htif_puts(counter == 41 ? "counter 41\n" : "counter changed\n");
  return r == 45 ? 0 : 3;
}
