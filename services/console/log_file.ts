/**
 * Log file backend: appends guest console output to a file.
 * @module
 */

import type { ConsoleSink } from "./console_sink.ts";

/** Appends console output to a file (created if missing). */
export class LogFileSink implements ConsoleSink {
  readonly name: string;

  private constructor(readonly path: string, readonly file: Deno.FsFile) {
    this.name = `log:${path}`;
  }

  /** Opens `path` for appending. */
  static async open(path: string): Promise<LogFileSink> {
    const file = await Deno.open(path, { append: true, create: true });
    return new LogFileSink(path, file);
  }

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) done += await this.file.write(bytes.subarray(done));
  }

  async close(): Promise<void> {
    await this.file.syncData().catch(() => {});
    this.file.close();
  }
}
