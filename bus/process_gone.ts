/**
 * Whether a process has exited, from /proc.
 *
 * @module
 */

/**
 * True once `pid` has exited (absent or a zombie).
 *
 * @example
 * ```ts
 * if (processGone(child.pid)) console.log("gone");
 * ```
 */
export function processGone(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z";
  } catch {
    return true;
  }
}
