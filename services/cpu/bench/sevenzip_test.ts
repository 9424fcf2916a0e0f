import assert from "node:assert/strict";
import { parseSevenZipBench } from "./sevenzip.ts";

// `7zr b 1 -mmt1 -md18` as printed in a QEMU riscv64 guest (26.01, console CRLFs removed).
const OUTPUT = `
7-Zip (r) 26.01 (riscv64) : Igor Pavlov : Public domain : 2026-04-27
 64-bit locale=C UTF8=- Threads:1 OPEN_MAX:4096

 mt1 d18
1T CPU Freq (MHz):  1545  1606  1759  2264  2395  2288  1628

RAM size:     246 MB (LP),  # CPU hardware threads:   1
RAM usage:      6 MB (LP),  # Benchmark threads:      1

                       Compressing  |                  Decompressing
Dict     Speed Usage    R/U Rating  |      Speed Usage    R/U Rating
         KiB/s     %   MIPS   MIPS  |      KiB/s     %   MIPS   MIPS

18:        695   100    621    620  |       9113   100    737    737
----------------------------------  | ------------------------------
Avr:       695   100    621    620  |       9113   100    737    737
Tot:             100    679    678
`;

Deno.test("parseSevenZipBench reads the Avr and Tot lines and the CPU frequency test", () => {
  assert.deepEqual(parseSevenZipBench(OUTPUT), {
    compressKiBs: 695,
    compressMips: 620,
    decompressKiBs: 9113,
    decompressMips: 737,
    totalMips: 678,
    freqMHz: [1545, 1606, 1759, 2264, 2395, 2288, 1628],
  });
});

Deno.test("parseSevenZipBench answers null for a run cut short", () => {
  assert.equal(parseSevenZipBench(OUTPUT.slice(0, OUTPUT.indexOf("Avr:"))), null);
});
