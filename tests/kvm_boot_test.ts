/**
 * The KVM engine on the real /dev/kvm (skipped where there is none): tiny guests run through
 * the same boot path as Linux (zero page, page tables, long mode, UART on 0x3f8, i8042 reset),
 * and the Debian amd64 guest's ELF vmlinux prints its first boot lines (a full boot to /init is
 * not asserted: on a PVM host it takes minutes, see services/cpu/kvm/README.md).
 */
import assert from "node:assert/strict";
import { KvmMachine } from "../services/cpu/kvm/mod.ts";
import {
  fwaitGuest,
  int3Guest,
  syscallGuest,
  tripleFaultGuest,
  uartHelloGuest,
} from "./kvm_micro_guest.ts";
import { kvmBackend } from "../services/cpu/kvm/host_kvm.ts";

const kvmMissing = !(await Deno.stat("/dev/kvm").then(() => true, () => false));
const ignore = kvmMissing;
if (kvmMissing) console.error("kvm_boot_test: skipped: /dev/kvm is absent on this host");

function machine(kernel: Uint8Array, onConsole: (b: Uint8Array) => void = () => {}): KvmMachine {
  return new KvmMachine({ kernel, cmdline: "console=ttyS0", memoryBytes: 64 << 20, onConsole });
}

Deno.test({
  name: "kvm: a long-mode guest writes to the 16550 on port 0x3f8 and resets through the i8042",
  ignore,
  async fn() {
    let out = "";
    const vm = machine(
      uartHelloGuest("vmesh-kvm hello\n"),
      (b) => out += new TextDecoder().decode(b),
    );
    try {
      const exit = await vm.run();
      assert.equal(exit.kind, "reset", exit.message);
      assert.match(exit.message, /i8042/);
      assert.equal(out, "vmesh-kvm hello\n");
      // Each byte: at least one LSR read and one THR write, each a port I/O exit.
      assert.ok((vm.exits.get("KVM_EXIT_IO") ?? 0) >= 2 * out.length + 1);
      assert.equal(vm.unclaimedPortAccesses, 0);
    } finally {
      vm.close();
    }
  },
});

Deno.test({
  name: "kvm: a triple-faulting guest ends its VM with a message, and the next VM runs",
  ignore,
  async fn() {
    const bad = machine(tripleFaultGuest());
    try {
      const exit = await bad.run();
      assert.equal(exit.kind, "error");
      assert.match(exit.message, /triple fault/);
    } finally {
      bad.close();
    }
    let out = "";
    const good = machine(uartHelloGuest("after\n"), (b) => out += new TextDecoder().decode(b));
    try {
      assert.equal((await good.run()).kind, "reset");
      assert.equal(out, "after\n");
    } finally {
      good.close();
    }
  },
});

Deno.test({
  name: "kvm: a kernel image of an unknown format is refused before any KVM resource",
  ignore,
  fn() {
    assert.throws(() => machine(new Uint8Array(4096)), /unknown kernel format/);
    const gz = new Uint8Array(4096);
    gz.set([0x1f, 0x8b]);
    assert.throws(() => machine(gz), /gzip/);
  },
});

Deno.test({
  name: "kvm: int3 reaches the guest's #BP handler, which returns past it (stepped over on PVM)",
  ignore,
  async fn() {
    let out = "";
    const vm = machine(int3Guest(), (b) => out += new TextDecoder().decode(b));
    try {
      const exit = await vm.run();
      assert.equal(exit.kind, "reset", exit.message);
      assert.equal(out, "BA");
    } finally {
      vm.close();
    }
  },
});

Deno.test({
  name: "kvm: fwait runs (stepped over on PVM, whose emulator refuses it)",
  ignore,
  async fn() {
    let out = "";
    const vm = machine(fwaitGuest(), (b) => out += new TextDecoder().decode(b));
    try {
      const exit = await vm.run();
      assert.equal(exit.kind, "reset", exit.message);
      assert.equal(out, "A");
    } finally {
      vm.close();
    }
  },
});

Deno.test({
  name:
    "kvm: a user-mode syscall enters LSTAR in supervisor mode (on PVM it does not: why Linux's /init dies here)",
  ignore,
  async fn() {
    let out = "";
    const vm = machine(syscallGuest(), (b) => out += new TextDecoder().decode(b));
    try {
      const exit = await vm.run();
      if (kvmBackend() === "hardware") {
        assert.equal(exit.kind, "reset", exit.message);
        assert.equal(out, "KS");
      } else {
        // PVM ran the handler without supervisor rights: its supervisor-only page faulted (no
        // IDT: a triple fault) at the handler's alias, 0x200000 + 0x100200 + 0x8e.
        assert.equal(out, "K", "the kernel part ran the supervisor-only alias");
        assert.equal(exit.kind, "error");
        assert.match(exit.message, /triple fault/);
        assert.equal(exit.rip, 0x30028e);
      }
    } finally {
      vm.close();
    }
  },
});
