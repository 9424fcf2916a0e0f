/**
 * The interface every console output backend implements (terminal, log file, later a
 * web terminal). Several sinks can be attached to one console at once.
 * @module
 */

/** Where guest console output goes. */
export interface ConsoleSink {
  /** A short name for logs, e.g. `terminal` or `log:/tmp/vm1.log`. */
  readonly name: string;
  /** Writes guest output bytes, in stream order. */
  write(bytes: Uint8Array): Promise<void>;
  /** Flushes and releases the backend. */
  close(): Promise<void>;
}
