/* Trap frame layout shared by crt.S and C: x0..x31 at index*8, then the saved epc. */
#ifndef FRAME_H
#define FRAME_H

#define FRAME_EPC (32 * 8)
#define FRAME_SIZE (34 * 8)
/* a7 value of the ecall that ends run_in_mode(). */
#define RIM_MAGIC 0x5ca1ab1e

#endif
