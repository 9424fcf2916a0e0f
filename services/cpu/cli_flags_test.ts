import assert from "node:assert/strict";
import {
  parseBiosFlag,
  parseMemoryFlag,
  parseNewMac,
  parseTimeoutSeconds,
  readFlags,
} from "./cli_flags.ts";

const usageError = (message: string) => new SyntaxError(message);

Deno.test("readFlags: --flag VALUE, --flag=VALUE, bare flags, short flags and the rest", () => {
  const seen: [string, string, string | undefined][] = [];
  let rest: string[] = [];
  for (
    const f of readFlags(["-m", "64", "--bios=none", "--v", "x=y", "--", "a", "b"], usageError)
  ) {
    if (f.arg === "--") {
      rest = f.rest();
      break;
    }
    const wantsValue = f.flag === "-m" || f.flag === "--bios";
    seen.push([f.arg, f.flag, wantsValue ? f.value() : undefined]);
  }
  assert.deepEqual(seen, [
    ["-m", "-m", "64"],
    ["--bios=none", "--bios", "none"],
    ["--v", "--v", undefined],
    ["x=y", "x=y", undefined],
  ]);
  assert.deepEqual(rest, ["a", "b"]);
});

Deno.test("readFlags: a flag without its value is the caller's usage error", () => {
  const walk = () => {
    for (const f of readFlags(["--kernel"], usageError)) f.value();
  };
  assert.throws(walk, new SyntaxError("--kernel needs a value"));
});

Deno.test("parseTimeoutSeconds: positive decimals only", () => {
  assert.equal(parseTimeoutSeconds("30", usageError), 30);
  assert.equal(parseTimeoutSeconds("0.5", usageError), 0.5);
  for (const bad of ["0", "0.0", "-1", "1e3", ".5", "x", ""]) {
    assert.throws(
      () => parseTimeoutSeconds(bad, usageError),
      new SyntaxError(`--timeout needs a positive number of seconds, got '${bad}'`),
    );
  }
});

Deno.test("parseMemoryFlag: sizes in bytes; a bad size is the caller's usage error", () => {
  assert.equal(parseMemoryFlag("64", usageError), 64 * 1024 * 1024);
  assert.equal(parseMemoryFlag("1G", usageError), 1024 ** 3);
  assert.throws(
    () => parseMemoryFlag("lots", usageError),
    new SyntaxError("bad memory size 'lots' (use e.g. 128, 128M or 1G)"),
  );
});

Deno.test("parseBiosFlag: none is no firmware, anything else a path", () => {
  assert.equal(parseBiosFlag("none"), null);
  assert.equal(parseBiosFlag("fw_jump.bin"), "fw_jump.bin");
});

Deno.test("parseNewMac: a unicast MAC, in lower case; anything else a TypeError naming it", () => {
  assert.equal(parseNewMac("52:54:00:AB:cd:01"), "52:54:00:ab:cd:01");
  assert.throws(() => parseNewMac("52:54:00:ab:cd"), /--new-mac "52:54:00:ab:cd" is not a MAC/);
  assert.throws(() => parseNewMac("52-54-00-ab-cd-01"), TypeError);
  assert.throws(() => parseNewMac("01:00:5e:00:00:01"), /group \(multicast\) address/);
});
