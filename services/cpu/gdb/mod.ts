/**
 * The GDB stub of `vmesh run` (QEMU's `-gdb tcp:HOST:PORT` and `-S`): the remote serial
 * protocol over TCP for one hart, with a target description, breakpoints, watchpoints,
 * single-step and Ctrl-C.
 *
 * @example
 * ```ts
 * import { GdbServer, GdbStub } from "./mod.ts";
 * declare const target: import("./mod.ts").DebugTarget;
 * const stub = new GdbStub(target, { waitForClient: true });
 * const server = new GdbServer(stub, { hostname: "127.0.0.1", port: 1234 });
 * // new Machine({ ..., debug: stub }) runs its batches through the stub
 * await server.close();
 * ```
 */
export {
  type DebugHart,
  type DebugMemory,
  type DebugTarget,
  GdbStub,
  type ReverseControl,
  type ReverseVerdict,
} from "./gdb_stub.ts";
export { type GdbAddress, GdbServer, parseGdbAddress } from "./gdb_server.ts";
export { debugTranslate } from "./debug_mmu.ts";
export { HeldClock } from "./held_clock.ts";
