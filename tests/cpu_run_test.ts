/**
 * `vmesh run` end to end: programs compiled at test time with the Debian cross toolchain run on
 * the machine as a separate process; OpenSBI (Debian's fw_jump.bin) boots and hands over to an
 * S-mode payload; QEMU is the oracle for what the firmware prints.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const VMESH = `${ROOT}vmesh`;
const FW_JUMP = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.bin";
const GCC = "riscv64-unknown-elf-gcc";
const CFLAGS = ["-nostdlib", "-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-O2"];

const START_S = `
  .section .text.start
  .globl _start
_start:
  la sp, stack_top
  call main
  slli a0, a0, 1
  ori a0, a0, 1
  la t0, tohost
  sd a0, 0(t0)
1: j 1b
`;

const HELLO_C = `
volatile unsigned long tohost __attribute__((section(".tohost"), aligned(8)));
volatile unsigned long fromhost __attribute__((section(".tohost"), aligned(8)));
static void putch(char c) {
  tohost = (1ul << 56) | (1ul << 48) | (unsigned char)c;
  while (fromhost == 0) {}
  fromhost = 0;
}
int main(void) {
  for (const char *s = "hello from htif\\n"; *s; s++) putch(*s);
  return 3;
}
`;

const linkScript = (base: string) => `
ENTRY(_start)
SECTIONS {
  . = ${base};
  .text : { *(.text.start) *(.text*) }
  .rodata : { *(.rodata*) *(.srodata*) }
  .data : { *(.data*) *(.sdata*) }
  .bss : { *(.bss*) *(.sbss*) }
  .tohost : ALIGN(64) { *(.tohost) }
  . = ALIGN(16) + 0x1000;
  stack_top = .;
}
`;

/** S-mode payload: prints through the legacy SBI putchar, then SBI SRST shutdown. */
const PAYLOAD_S = `
  .section .text
  .globl _start
_start:
  la s0, msg
1:
  lbu a0, 0(s0)
  beqz a0, 2f
  li a7, 1
  ecall
  addi s0, s0, 1
  j 1b
2:
  li a7, 0x53525354
  li a6, 0
  li a0, 0
  li a1, 0
  ecall
3:
  wfi
  j 3b
  .section .rodata
msg:
  .asciz "vmesh payload: hello from S-mode\\n"
`;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function exec(cmd: string, args: string[]): Promise<Result> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", stdin: "null" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `./vmesh run ARGS` as its own process. */
function vmeshRun(args: string[]): Promise<Result> {
  return exec(VMESH, ["run", ...args]);
}

async function compile(dir: string, name: string, sources: Record<string, string>, ld: string[]) {
  const files: string[] = [];
  for (const [file, text] of Object.entries(sources)) {
    await Deno.writeTextFile(`${dir}/${file}`, text);
    files.push(`${dir}/${file}`);
  }
  const r = await exec(GCC, [
    ...CFLAGS,
    ...ld,
    "-Wl,--no-warn-rwx-segments",
    ...files,
    "-o",
    `${dir}/${name}`,
  ]);
  assert.equal(r.code, 0, r.stderr);
  return `${dir}/${name}`;
}

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "vmesh_run_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function helloElf(dir: string, base = "0x80000000"): Promise<string> {
  await Deno.writeTextFile(`${dir}/link.ld`, linkScript(base));
  return compile(dir, `hello_${base}.elf`, { "start.S": START_S, "hello.c": HELLO_C }, [
    "-T",
    `${dir}/link.ld`,
  ]);
}

Deno.test("vmesh run: HTIF hello world prints its text and exits with its code", async () => {
  await withDir(async (dir) => {
    const r = await vmeshRun([await helloElf(dir)]);
    assert.equal(r.stderr, "");
    assert.equal(r.stdout, "hello from htif\n");
    assert.equal(r.code, 3);
  });
});

/** Asserts a failed run: nonzero exit and exactly one error line matching `message`. */
function assertError(r: Result, message: RegExp) {
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, "");
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `one error line, got: ${r.stderr}`);
  assert.match(lines[0], message);
}

Deno.test("vmesh run: bad input gives one clear error line and a nonzero exit", async () => {
  await withDir(async (dir) => {
    const elf = await helloElf(dir);
    const good = await Deno.readFile(elf);
    const variant = async (name: string, bytes: Uint8Array) => {
      await Deno.writeFile(`${dir}/${name}`, bytes);
      return `${dir}/${name}`;
    };
    const patched = (offset: number, value: number) => {
      const b = good.slice();
      b[offset] = value;
      return b;
    };

    assertError(await vmeshRun([`${dir}/missing.elf`]), /missing\.elf: no such file/);
    assertError(
      await vmeshRun([await variant("text.elf", new TextEncoder().encode("not a program\n"))]),
      /not an ELF file \(bad magic\)/,
    );
    assertError(await vmeshRun([await variant("class.elf", patched(4, 1))]), /not a 64-bit ELF/);
    assertError(
      await vmeshRun([await variant("machine.elf", patched(18, 62))]),
      /not a RISC-V ELF/,
    );
    assertError(
      await vmeshRun([await variant("short.elf", good.slice(0, 40))]),
      /truncated ELF header/,
    );
    assertError(
      await vmeshRun([await variant("cut.elf", good.slice(0, 0x1010))]),
      /truncated ELF: segment \d+ extends past the end of the file/,
    );
    assertError(
      await vmeshRun([await helloElf(dir, "0x90000000")]),
      /segment at 0x90000000 .* lies outside RAM \[0x80000000, 0x88000000\)/,
    );
    assertError(await vmeshRun(["-m", "5001K", elf]), /multiple of 4 KiB/);
    assertError(await vmeshRun(["-m", "lots", elf]), /bad memory size 'lots'/);
    assertError(await vmeshRun(["--bios", `${dir}/nofw.bin`, elf]), /nofw\.bin: no such file/);
  });
});

/** Lines of OpenSBI's boot banner that depend on the board and firmware, not on the hart. */
const BOARD_LINES = [
  "Platform Name",
  "Platform HART Count",
  "Platform IPI Device",
  "Platform Timer Device",
  "Platform Console Device",
  "Platform Reboot Device",
  "Platform Shutdown Device",
  "Firmware Base",
  "Domain0 Next Address",
  "Domain0 Next Mode",
  "Boot HART ID",
];

function bannerFields(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(":");
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

Deno.test("vmesh run: OpenSBI fw_jump boots, prints its banner and runs our S-mode payload", async () => {
  await withDir(async (dir) => {
    const payload = await compile(dir, "payload.elf", { "payload.S": PAYLOAD_S }, [
      "-Wl,-Ttext=0x80200000",
      "-Wl,-n",
    ]);
    const ours = await vmeshRun(["--bios", FW_JUMP, "--timeout", "120", payload]);
    const qemu = await exec("timeout", [
      "120",
      "qemu-system-riscv64",
      "-M",
      "virt",
      "-m",
      "128M",
      "-bios",
      FW_JUMP,
      "-kernel",
      payload,
      "-nographic",
    ]);
    assert.equal(qemu.code, 0, qemu.stderr);
    assert.match(ours.stdout, /OpenSBI v1\.\d/);
    assert.match(ours.stdout, /vmesh payload: hello from S-mode\r?\n/);
    assert.equal(ours.code, 0, ours.stderr);
    const a = bannerFields(ours.stdout), b = bannerFields(qemu.stdout);
    for (const key of BOARD_LINES) assert.equal(a.get(key), b.get(key), key);
  });
});

Deno.test("vmesh run: --max-instructions stops a program that never ends; --help", async () => {
  await withDir(async (dir) => {
    const spin = await compile(dir, "spin.elf", { "spin.S": ".globl _start\n_start: j _start\n" }, [
      "-Wl,-Ttext=0x80000000",
      "-Wl,-n",
    ]);
    const r = await vmeshRun(["--max-instructions", "200000", spin]);
    assert.equal(r.code, 124);
    assert.match(r.stderr, /^vmesh run: stopped after \d+ instructions \(limit\)\n$/);
    const help = await vmeshRun(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /usage: vmesh run \[options\] PROGRAM/);
  });
});
