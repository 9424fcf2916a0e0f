/**
 * The guest initramfs: a newc ("070701") cpio archive written directly (so device nodes
 * and root ownership need no root privileges), gzip-compressed for CONFIG_RD_GZIP.
 */

import { gzipSync } from "node:zlib";

/** One archive member. Directories and parents must be listed before their contents. */
export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; data: Uint8Array; mode?: number }
  | { type: "symlink"; path: string; target: string }
  | { type: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  return (n >>> 0).toString(16).padStart(8, "0");
}

/** Encodes entries as a newc cpio archive (uid/gid 0, mtime 0, ends with TRAILER!!!). */
export function encodeCpio(entries: CpioEntry[]): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    chunks.push(b);
    size += b.length;
  };
  const pad4 = () => {
    if (size % 4) push(new Uint8Array(4 - (size % 4)));
  };
  const member = (
    ino: number,
    name: string,
    mode: number,
    data: Uint8Array,
    rdev: [number, number],
  ) => {
    const nameBytes = enc.encode(name + "\0");
    const fields = [
      ino,
      mode,
      0, // uid
      0, // gid
      (mode & 0o170000) === S_IFDIR ? 2 : 1,
      0, // mtime
      data.length,
      0, // devmajor
      0, // devminor
      rdev[0],
      rdev[1],
      nameBytes.length,
      0, // check
    ];
    push(enc.encode("070701" + fields.map(hex8).join("")));
    push(nameBytes);
    pad4();
    push(data);
    pad4();
  };
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, "");
    if (name === "" || name.split("/").includes("..")) {
      throw new Error(`cpio: bad member path '${e.path}'`);
    }
    switch (e.type) {
      case "dir":
        member(ino++, name, S_IFDIR | (e.mode ?? 0o755), new Uint8Array(), [0, 0]);
        break;
      case "file":
        member(ino++, name, S_IFREG | (e.mode ?? 0o644), e.data, [0, 0]);
        break;
      case "symlink":
        member(ino++, name, S_IFLNK | 0o777, enc.encode(e.target), [0, 0]);
        break;
      case "chardev":
        member(ino++, name, S_IFCHR | (e.mode ?? 0o600), new Uint8Array(), [e.major, e.minor]);
        break;
    }
  }
  member(0, "TRAILER!!!", 0, new Uint8Array(), [0, 0]);
  pad4();
  const out = new Uint8Array(size);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Relative symlink target from the link at `linkPath` to the absolute `target`. */
function relativeTo(linkPath: string, target: string): string {
  const from = linkPath.split("/").filter(Boolean).slice(0, -1);
  const to = target.split("/").filter(Boolean);
  let common = 0;
  while (common < from.length && common < to.length - 1 && from[common] === to[common]) common++;
  return "../".repeat(from.length - common) + to.slice(common).join("/");
}

/**
 * The member list of the guest initramfs: busybox, its applet links, /init, /dev/console,
 * and udhcpc's default script (so `udhcpc -i eth0` configures the interface).
 */
export function initramfsEntries(
  busybox: Uint8Array,
  appletLinks: string[],
  init: Uint8Array,
  udhcpcScript?: Uint8Array,
): CpioEntry[] {
  const dirs = ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "mnt"];
  const entries: CpioEntry[] = dirs.map((path) => ({ type: "dir", path }));
  entries.push({ type: "dir", path: "root", mode: 0o700 });
  entries.push({ type: "dir", path: "etc" });
  // The kernel opens /dev/console for init before anything mounts devtmpfs.
  entries.push({ type: "chardev", path: "dev/console", major: 5, minor: 1 });
  entries.push({ type: "file", path: "bin/busybox", data: busybox, mode: 0o755 });
  const seen = new Set(["/bin/busybox"]);
  for (const link of appletLinks) {
    if (seen.has(link) || !/^\/(usr\/)?s?bin\/[^/]+$/.test(link)) continue;
    seen.add(link);
    entries.push({ type: "symlink", path: link, target: relativeTo(link, "/bin/busybox") });
  }
  entries.push({ type: "file", path: "init", data: init, mode: 0o755 });
  if (udhcpcScript) {
    entries.push({ type: "dir", path: "usr/share" }, { type: "dir", path: "usr/share/udhcpc" });
    entries.push({
      type: "file",
      path: "usr/share/udhcpc/default.script",
      data: udhcpcScript,
      mode: 0o755,
    });
  }
  entries.push({
    type: "file",
    path: "etc/passwd",
    data: new TextEncoder().encode("root:x:0:0:root:/root:/bin/sh\n"),
  });
  entries.push({
    type: "file",
    path: "etc/group",
    data: new TextEncoder().encode("root:x:0:\n"),
  });
  return entries;
}

/** gzip-compresses an archive (the kernel unpacks it with CONFIG_RD_GZIP). */
export function gzipArchive(archive: Uint8Array): Uint8Array {
  return new Uint8Array(gzipSync(archive, { level: 9 }));
}
