/**
 * The few libc calls the KVM engine needs, through Deno FFI (no native addon): open, close,
 * ioctl, mmap, munmap and errno. Loaded lazily so that importing the module never fails.
 */

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u32", "u64"], result: "i32" },
  ioctl_ptr: { name: "ioctl", parameters: ["i32", "u32", "pointer"], result: "i32" },
  ioctl_run: { name: "ioctl", parameters: ["i32", "u32", "u64"], result: "i32", nonblocking: true },
  mmap: { parameters: ["pointer", "usize", "i32", "i32", "i32", "isize"], result: "pointer" },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
} as const;

/** The loaded library. */
export type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | undefined;

/** Opens libc.so.6 once. */
export function libc(): Libc {
  lib ??= Deno.dlopen("libc.so.6", SYMBOLS).symbols;
  return lib;
}

/** The calling thread's errno (read right after a failed call). */
export function errno(): number {
  const p = libc().__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** errno and its message, e.g. "EACCES (13): Permission denied". */
export function errnoText(code: number): string {
  const p = libc().strerror(code);
  const names: Record<number, string> = {
    1: "EPERM",
    2: "ENOENT",
    4: "EINTR",
    9: "EBADF",
    13: "EACCES",
    14: "EFAULT",
    16: "EBUSY",
    17: "EEXIST",
    22: "EINVAL",
    12: "ENOMEM",
    25: "ENOTTY",
  };
  const msg = p ? new Deno.UnsafePointerView(p).getCString() : "";
  return `${names[code] ?? "errno"} (${code}): ${msg}`;
}

/** open(2) flags used here. */
export const O_RDWR = 2, O_CLOEXEC = 0o2000000;
/** mmap(2) constants used here. */
export const PROT_READ = 1,
  PROT_WRITE = 2,
  MAP_SHARED = 1,
  MAP_PRIVATE = 2,
  MAP_ANONYMOUS = 0x20,
  MAP_NORESERVE = 0x4000;

/** A NUL-terminated C string. */
export function cString(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}
