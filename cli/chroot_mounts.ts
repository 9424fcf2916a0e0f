/**
 * The mounts of a chroot (/proc, /sys, /dev and anything the commands inside add, such as
 * `ip netns add`'s /run/netns binds) and their removal: every mount point under the root is
 * read from /proc/self/mountinfo and unmounted deepest first, so nothing is left mounted.
 */

/** Decodes mountinfo's octal escapes (`\040` is a space). */
function unescapeMountPath(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The mount points in `mountinfo` text at or below `root`, deepest first.
 *
 * @example
 * ```ts
 * mountsUnder("36 1 0:5 / /r/proc rw - proc proc rw\n", "/r"); // ["/r/proc"]
 * ```
 */
export function mountsUnder(mountinfo: string, root: string): string[] {
  const base = root.replace(/\/+$/, "");
  const points = mountinfo.split("\n").map((l) => l.split(" ")[4]).filter(Boolean).map(
    unescapeMountPath,
  ).filter((p) => p === base || p.startsWith(`${base}/`));
  return [...new Set(points)].sort((a, b) => b.split("/").length - a.split("/").length);
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; err: string }> {
  const r = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped", stdin: "null" })
    .output();
  return { ok: r.success, err: new TextDecoder().decode(r.stderr).trim() };
}

/** Mounts `source` on `target` with `mount ARGS`; throws with mount's message on failure. */
export async function mount(args: string[]): Promise<void> {
  const r = await run("mount", args);
  if (!r.ok) throw new Error(`mount ${args.join(" ")} failed: ${r.err}`);
}

/**
 * Unmounts everything at or below `root` (deepest first; a busy mount is detached lazily).
 * Returns the mount points still present afterwards (empty when all went).
 */
export async function unmountAllUnder(root: string): Promise<string[]> {
  for (let pass = 0; pass < 3; pass++) {
    const points = mountsUnder(await Deno.readTextFile("/proc/self/mountinfo"), root);
    if (points.length === 0) return [];
    for (const p of points) {
      if (!(await run("umount", [p])).ok) await run("umount", ["-l", p]);
    }
  }
  return mountsUnder(await Deno.readTextFile("/proc/self/mountinfo"), root);
}

/** Pids of processes whose root directory is `root` (left running inside the chroot). */
export async function processesInside(root: string): Promise<number[]> {
  const out: number[] = [];
  for await (const e of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      if (await Deno.readLink(`/proc/${e.name}/root`) === root) out.push(Number(e.name));
    } catch { /* gone, or not ours to read */ }
  }
  return out;
}
