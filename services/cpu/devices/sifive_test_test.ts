import assert from "node:assert/strict";
import { type FinisherRequest, SifiveTest } from "./sifive_test.ts";

Deno.test("SiFive test finisher decodes pass, fail with code, and reset", () => {
  const got: FinisherRequest[] = [];
  const dev = new SifiveTest((r) => got.push(r));
  dev.write(0, 4, 0x5555);
  dev.write(0, 4, (7 << 16) | 0x3333);
  dev.write(0, 4, 0x7777);
  dev.write(0, 4, 0x1234); // unknown status: ignored
  dev.write(4, 4, 0x5555); // other offsets: ignored
  dev.write(0, 1, 0x55); // byte writes: ignored
  dev.write(0, 2, 0x5555); // OpenSBI uses a 16-bit store
  assert.deepEqual(got, [{ kind: "pass" }, { kind: "fail", code: 7 }, { kind: "reset" }, {
    kind: "pass",
  }]);
});
