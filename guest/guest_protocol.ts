/**
 * What the guest's /init (guest/recipe/init) prints and reads: the console markers a host
 * waits for, and the kernel command line parameter that selects batch mode.
 */

/** Printed by /init once proc, sys and dev are mounted, before batch mode or the shell. */
export const GUEST_READY_MARKER = "vmesh-guest: init ready";
/** Printed by /init right before the interactive shell starts. */
export const GUEST_SHELL_MARKER = "vmesh-guest: shell ready";
/** The interactive shell's prompt (PS1). */
export const GUEST_PROMPT = "~ # ";
/** Printed before a batch command's output. */
export const BATCH_BEGIN_MARKER = "vmesh-guest: batch begin";
/** Prefix of the line printed after a batch command, followed by its exit status. */
export const BATCH_END_MARKER = "vmesh-guest: batch end rc=";

/**
 * The kernel command line parameter that makes /init run `command` and power off.
 * Plain `vmesh.cmd="..."` when the command is readable that way, else base64 in `vmesh.cmd64`.
 */
export function batchCmdlineParam(command: string): string {
  if (/^[\x20-\x7e]*$/.test(command) && !command.includes('"') && command.trim() !== "") {
    return `vmesh.cmd="${command}"`;
  }
  const bytes = new TextEncoder().encode(command);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return `vmesh.cmd64=${btoa(bin)}`;
}

/** The result of a batch run, parsed from console output. */
export interface BatchOutput {
  /** Lines between the begin and end markers (the command's own output). */
  output: string;
  /** The command's exit status as reported by /init. */
  status: number;
}

/** Extracts a batch command's output and exit status from console text; null if incomplete. */
export function parseBatchOutput(console: string): BatchOutput | null {
  const text = console.replaceAll("\r\n", "\n");
  const begin = text.indexOf(BATCH_BEGIN_MARKER + "\n");
  if (begin < 0) return null;
  const start = begin + BATCH_BEGIN_MARKER.length + 1;
  const end = text.indexOf(BATCH_END_MARKER, start);
  if (end < 0) return null;
  const m = /^(\d+)/.exec(text.slice(end + BATCH_END_MARKER.length));
  if (!m) return null;
  return { output: text.slice(start, end), status: Number(m[1]) };
}
