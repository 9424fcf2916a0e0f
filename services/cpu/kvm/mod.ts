/** The x86-64 KVM engine: a VM with one vCPU on /dev/kvm through Deno FFI. */
export {
  KvmError,
  type KvmExit,
  KvmMachine,
  type KvmMachineOptions,
  openKvm,
} from "./kvm_machine.ts";
export { type BzImage, parseBzImage } from "./bzimage.ts";
export { runKvmGuest, type RunKvmGuestOptions } from "./run_guest.ts";
