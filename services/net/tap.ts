/**
 * A host TAP interface as a switch port (the host uplink), through libc via Deno FFI:
 * open `/dev/net/tun`, `TUNSETIFF` with IFF_TAP|IFF_NO_PI (creates the interface, or
 * attaches to an existing one), then frames flow both ways. The fd is nonblocking; a
 * `poll` that runs on FFI's worker thread (`nonblocking: true`) waits for frames, so the
 * event loop never blocks. Writes that would block leave the frame queued in the switch.
 * @module
 */

import type { VirtualSwitch } from "./switch.ts";

const O_RDWR = 2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const POLLIN = 1;
/** POLLERR | POLLHUP | POLLNVAL. */
const POLL_GONE = 0x8 | 0x10 | 0x20;
const EAGAIN = 11;
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  5: "EIO",
  13: "EACCES",
  16: "EBUSY",
  19: "ENODEV",
  22: "EINVAL",
};

/** A TAP device could not be opened; `message` says what is needed. */
export class TapError extends Error {
  /** `errno` of the failing call (0 if none). */
  constructor(message: string, readonly errno = 0) {
    super(message);
    this.name = "TapError";
  }
}

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
let libc: Libc | undefined;

function loadLibc(): Libc {
  if (!libc) {
    try {
      libc = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    } catch (e) {
      throw new TapError(`cannot load libc.so.6 through FFI (needs --allow-ffi): ${e}`);
    }
  }
  return libc;
}

function errno(c: Libc): number {
  const p = c.__errno_location();
  return p ? new Deno.UnsafePointerView(p).getInt32() : 0;
}

/** Interface names the kernel accepts and we are willing to pass: up to 15 safe characters. */
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** Options of {@link TapPort}. */
export interface TapOptions {
  /** One line per problem (write errors are reported once). */
  log?: (line: string) => void;
  /** How long one poll waits (ms) before checking whether the port was closed; default 200. */
  pollMs?: number;
}

/** A TAP interface bridged into a switch as port `tap:<name>`. */
export class TapPort {
  /** The port id on the switch. */
  readonly portId: string;
  readonly #c: Libc;
  readonly #fd: number;
  #closed = false;
  #loop?: Promise<void>;
  #retry?: ReturnType<typeof setTimeout>;
  #warned = false;
  /** Frames read from / written to the interface, and read/write failures. */
  readonly stats = { read: 0, written: 0, writeErrors: 0 };

  private constructor(
    readonly name: string,
    readonly sw: VirtualSwitch,
    c: Libc,
    fd: number,
    readonly opts: TapOptions,
  ) {
    this.#c = c;
    this.#fd = fd;
    this.portId = `tap:${name}`;
  }

  /**
   * Creates (or attaches to) TAP interface `name` and joins it to `sw`. Throws a
   * {@link TapError} naming what is missing (root/CAP_NET_ADMIN, /dev/net/tun).
   */
  static open(name: string, sw: VirtualSwitch, opts: TapOptions = {}): TapPort {
    if (!IFNAME.test(name)) {
      throw new TapError(`tap name ${JSON.stringify(name)}: 1..15 of [A-Za-z0-9_.-]`);
    }
    const c = loadLibc();
    const path = new TextEncoder().encode("/dev/net/tun\0");
    const fd = c.open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const e = errno(c);
      const why = e === 2
        ? "/dev/net/tun does not exist (load the tun module: modprobe tun; in a container, pass --device /dev/net/tun)"
        : e === 13 || e === 1
        ? "opening /dev/net/tun needs root or CAP_NET_ADMIN"
        : `open /dev/net/tun failed: ${ERRNO_NAMES[e] ?? `errno ${e}`}`;
      throw new TapError(`tap ${name}: ${why}`, e);
    }
    const ifr = new Uint8Array(40);
    ifr.set(new TextEncoder().encode(name), 0);
    new DataView(ifr.buffer).setUint16(16, IFF_TAP | IFF_NO_PI, true);
    if (c.ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) {
      const e = errno(c);
      c.close(fd);
      const why = e === 1 || e === 13
        ? "creating or attaching a TAP interface needs root or CAP_NET_ADMIN"
        : e === 16
        ? "the interface is in use by another process"
        : e === 22
        ? "an interface of that name exists and is not a TAP device"
        : `TUNSETIFF failed: ${ERRNO_NAMES[e] ?? `errno ${e}`}`;
      throw new TapError(`tap ${name}: ${why}`, e);
    }
    const tap = new TapPort(name, sw, c, fd, opts);
    sw.join(tap.portId, "", (frame) => tap.#write(frame), "uplink");
    tap.#loop = tap.#readLoop();
    return tap;
  }

  #write(frame: Uint8Array): boolean {
    if (this.#closed) return true;
    const n = Number(
      this.#c.write(this.#fd, frame as Uint8Array<ArrayBuffer>, BigInt(frame.length)),
    );
    if (n >= 0) {
      this.stats.written++;
      return true;
    }
    const e = errno(this.#c);
    if (e === EAGAIN) {
      // The kernel's queue is full: keep the frame queued and try again shortly.
      this.#retry ??= setTimeout(() => {
        this.#retry = undefined;
        this.sw.resume(this.portId);
      }, 1);
      return false;
    }
    this.stats.writeErrors++;
    if (!this.#warned) {
      this.#warned = true;
      this.opts.log?.(`tap ${this.name}: write failed: ${ERRNO_NAMES[e] ?? `errno ${e}`}`);
    }
    // EIO and friends (interface down): the frame is lost (the switch counts a sink_error).
    throw new TapError(`tap ${this.name}: write failed`, e);
  }

  async #readLoop(): Promise<void> {
    const pfd = new Uint8Array(8);
    const view = new DataView(pfd.buffer);
    view.setInt32(0, this.#fd, true);
    view.setInt16(4, POLLIN, true);
    const buf = new Uint8Array(65536 + 14);
    const wait = this.opts.pollMs ?? 200;
    while (!this.#closed) {
      view.setInt16(6, 0, true);
      const r = await this.#c.poll(pfd, 1n, wait);
      if (this.#closed) break;
      if (r < 0) {
        // EINTR and the like: poll again, without spinning.
        await new Promise((res) => setTimeout(res, 10));
        continue;
      }
      if (r === 0) continue;
      let gone = (view.getInt16(6, true) & POLL_GONE) !== 0;
      for (;;) {
        const n = Number(this.#c.read(this.#fd, buf, BigInt(buf.length)));
        if (n > 0) {
          this.stats.read++;
          this.sw.input(this.portId, buf.slice(0, n));
          continue;
        }
        if (n < 0 && errno(this.#c) !== EAGAIN) gone = true;
        break;
      }
      if (gone) {
        // The interface was deleted (or its namespace): stop, instead of polling an error forever.
        this.opts.log?.(`tap ${this.name}: the interface is gone; uplink detached`);
        this.sw.leave(this.portId);
        return;
      }
    }
  }

  /** Leaves the switch, stops reading and closes the fd (the interface goes unless persistent). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retry);
    this.sw.leave(this.portId);
    await this.#loop;
    this.#c.close(this.#fd);
  }
}
