/**
 * @vmesh/console — serial console backends and the service that attaches them to a VM.
 *
 * - {@link ConsoleSink}: the output backend interface; {@link TerminalSink} (stdout and
 *   keyboard, QEMU-style `Ctrl-A` escapes) and {@link LogFileSink} (append to a file).
 * - {@link ConsoleService}: `vmesh.<vm>.console.out` batches in stream order to the sinks,
 *   keyboard bytes as batches on `vmesh.<vm>.console.in`, and the `send` op.
 * @module
 */

export type { ConsoleSink } from "./console_sink.ts";
export { type Ordered, StreamOrder } from "./stream_order.ts";
export { CTRL_A, type Decoded, type EscapeCommand, EscapeDecoder } from "./escape_keys.ts";
export { LogFileSink } from "./log_file.ts";
export { type TerminalInput, TerminalSink } from "./terminal.ts";
export {
  ConsoleService,
  type ConsoleServiceOptions,
  MAX_SEND_BYTES,
  ops,
  SERVICE_NAME,
} from "./console_service.ts";
