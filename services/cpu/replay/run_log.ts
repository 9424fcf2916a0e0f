/**
 * Deterministic record and replay of a `vmesh run`: the machine runs on instruction-count time
 * with the interpreter and a fixed RTC epoch, so the only input from outside is the console.
 * The recorder writes (log_format.ts: a JSON header line, then binary frames) a header (the
 * program's SHA-256 and the machine flags), every chunk of console input with the run-loop
 * step at which the UART took it, checkpoints
 * (a hash of RAM, every hart record and every device record) every `checkpointEvery`
 * instructions, and the end. The replayer feeds the same input at the same steps, ignores the
 * terminal, and compares every checkpoint: the first mismatch stops the run and says where.
 *
 * @example
 * ```ts
 * // const rec = await RunRecorder.create("boot.log", header);
 * // new Machine({ ...flags, clock: "instructions", engine: "interp", journal: rec });
 * // const rep = await RunReplayer.open("boot.log", header);   // same flags, same program
 * ```
 * @module
 */
import type { Machine, RunJournal } from "../machine/machine.ts";
import { saveMachine } from "../snapshot/machine_state.ts";
import {
  type DeviceEntry,
  encodeEntry,
  encodeHeader,
  type LogEntry,
  LogFormatError,
  parseLog,
} from "./log_format.ts";

export type { DeviceEntry } from "./log_format.ts";

/** The flags a recording was made with; a replay must be given the same. */
export interface RunLogHeader {
  vmesh: "run-log";
  /** 2 is written now (log_format.ts); 1 (JSON lines, base64) is still read. */
  version: 1 | 2;
  /** SHA-256 (hex) of the program, firmware and initrd bytes, in that order. */
  images: string;
  ramSize: number;
  harts: number;
  append?: string;
  /** The RTC's epoch at mtime 0, in ns. */
  rtcEpochNs: number;
  /** Instructions between checkpoints. */
  checkpointEvery: number;
  /** The recording's `--max-instructions` (its last batch was cut there: a replay cuts it too). */
  maxInstructions?: number;
  /** A `vmesh boot` recording: its virtio devices, in slot order (see device_log.ts). */
  devices?: RecordedDevices;
}

/** The virtio devices of a recorded `vmesh boot` (disks, then nics, then the rng). */
export interface RecordedDevices {
  /** Disk device names (the guest sees each as its serial). */
  disks: string[];
  /** MAC addresses of the nics. */
  nics: string[];
  rng: boolean;
  /** Seed of the virtio-rng's entropy (a recorded run's entropy is a function of it). */
  seed: number;
}

type Entry = LogEntry;

/** A log that cannot be replayed here, or a replay that went another way than the recording. */
export class ReplayError extends Error {
  override name = "ReplayError";
}

/** SHA-256 hex of the concatenation of `parts`. */
export async function imagesDigest(parts: Uint8Array[]): Promise<string> {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) all.set(p, (off += p.length) - p.length);
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A 64-bit (two 32-bit lanes) hash of RAM, every hart record and every device record; with
 * `parts`, also a 32-bit hash of each of them by name ("ram", "hart0", "uart0", ...), so a
 * mismatch can say what differed.
 */
export function machineHash(m: Machine, parts?: Record<string, string>): string {
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, "0");
  const ram = m.mem.ram();
  const words = new Int32Array(ram.buffer, ram.byteOffset, ram.length >> 2);
  let a = 0x811c9dc5 | 0, b = 0x01000193 | 0;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    a = Math.imul(a ^ w, 0x01000193);
    b = Math.imul(b ^ w ^ i, 0x5bd1e995);
  }
  if (parts) parts.ram = hex(b);
  const { harts, devices } = saveMachine(m);
  for (const r of [...harts, ...devices]) {
    let c = 0x811c9dc5 | 0;
    for (const byte of r.state) {
      a = Math.imul(a ^ byte, 0x01000193);
      b = Math.imul(b ^ byte, 0x5bd1e995);
      c = Math.imul(c ^ byte, 0x01000193);
    }
    if (parts) parts[r.device] = hex(c);
  }
  return `${hex(a)}${hex(b)}:${m.instret}`;
}

/** The names of the parts whose hashes differ ("ram", "hart0", ...), or "" when unknown. */
function differing(recorded: Record<string, string> | undefined, now: Record<string, string>) {
  if (!recorded) return "";
  const names = Object.keys(now).filter((k) => recorded[k] !== now[k]);
  return names.length ? `; differs in ${names.join(", ")}` : "";
}

/** Writes a recording as the run goes (a crash leaves every line written so far). */
export class RunRecorder implements RunJournal {
  readonly replaying = false;
  readonly header: RunLogHeader;
  #file: Deno.FsFile;
  #next: number;
  #every: number;
  /** Checkpoints written. */
  checkpoints = 0;
  /** Bytes written so far. */
  bytes = 0;

  private constructor(file: Deno.FsFile, header: RunLogHeader) {
    this.header = { ...header, version: 2 };
    this.#file = file;
    this.#every = header.checkpointEvery;
    this.#next = header.checkpointEvery;
    this.#write(encodeHeader(this.header));
  }

  /** Creates (or truncates) `path` and writes the header (as version 2, log_format.ts). */
  static async create(path: string, header: RunLogHeader): Promise<RunRecorder> {
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    return new RunRecorder(file, header);
  }

  #write(bytes: Uint8Array): void {
    let off = 0;
    while (off < bytes.length) off += this.#file.writeSync(bytes.subarray(off));
    this.bytes += bytes.length;
  }

  #line(e: Entry): void {
    this.#write(encodeEntry(e));
  }

  step(step: number, m: Machine): undefined {
    if (m.instret >= this.#next) {
      const p: Record<string, string> = {};
      this.#line({ s: step, i: m.instret, h: machineHash(m, p), p });
      this.checkpoints++;
      this.#next = m.instret + this.#every;
    }
    return undefined;
  }

  fed(step: number, bytes: Uint8Array): void {
    this.#line({ s: step, in: bytes.slice() });
  }

  /** Logs what a device did (device_log.ts). */
  device(e: DeviceEntry): void {
    this.#line(e);
  }

  end(step: number, m: Machine, code: number): void {
    // A stop from outside lands inside a batch, where a replay cannot follow: no final hash.
    if (m.stopCause !== "stopped") {
      const p: Record<string, string> = {};
      this.#line({ s: step, i: m.instret, h: machineHash(m, p), p });
    }
    this.#line({ s: step, end: code, i: m.instret });
    this.#file.close();
  }
}

/** Replays a recording; `divergence` says where it went another way, if it did. */
export class RunReplayer implements RunJournal {
  readonly replaying = true;
  readonly header: RunLogHeader;
  #entries: Entry[];
  #at = 0;
  /** Why the replay stopped early (a checkpoint or the end differed), undefined when it matched. */
  divergence: string | undefined;
  /** Checkpoints compared (all matched unless `divergence` is set). */
  checkpoints = 0;
  /** The replay was stopped from outside (gdb's kill, a signal) before the recording's end. */
  stoppedEarly = false;
  #reachedEnd = false;
  /** The recorded run's exit code and instruction count. */
  readonly recordedEnd: { code: number; instret: number; step: number } | undefined;
  /** Receives the device entries of each step, in log order (device_log.ts). */
  onDevice: ((e: DeviceEntry) => void) | undefined;

  private constructor(header: RunLogHeader, entries: Entry[]) {
    this.header = header;
    this.#entries = entries;
    const end = entries.find((e): e is Extract<Entry, { end: number }> => "end" in e);
    this.recordedEnd = end ? { code: end.end, instret: end.i, step: end.s } : undefined;
  }

  /** Reads `path` and checks it was recorded with `expected` (images and flags). */
  static async open(
    path: string,
    expected: Omit<RunLogHeader, "rtcEpochNs" | "checkpointEvery" | "maxInstructions" | "version">,
  ): Promise<RunReplayer> {
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (e) {
      throw new ReplayError(`cannot read ${path}: ${e instanceof Error ? e.message : e}`);
    }
    let header: RunLogHeader;
    let entries: Entry[];
    try {
      const log = parseLog(bytes, path);
      header = log.header as unknown as RunLogHeader;
      entries = log.entries;
    } catch (e) {
      if (e instanceof LogFormatError) throw new ReplayError(e.message);
      throw e;
    }
    // Not checkpointEvery: the replay takes its checkpoints from the log.
    for (const k of ["images", "ramSize", "harts", "append"] as const) {
      if (header[k] !== expected[k]) {
        throw new ReplayError(
          `${path} was recorded with ${k} ${JSON.stringify(header[k])}, not ${
            JSON.stringify(expected[k])
          }: give the same program, images and flags`,
        );
      }
    }
    if (entries.some((e) => typeof e?.s !== "number")) {
      throw new ReplayError(`${path}: an entry has no step`);
    }
    return new RunReplayer(header, entries);
  }

  step(step: number, m: Machine): Uint8Array | "stop" | undefined {
    let input: Uint8Array | undefined;
    while (this.#at < this.#entries.length && this.#entries[this.#at].s <= step) {
      const e = this.#entries[this.#at++];
      if ("in" in e) input = input ? concat(input, e.in) : e.in;
      else if ("blk" in e || "net" in e) this.onDevice?.(e);
      else if ("info" in e || "hold" in e) continue;
      else if ("h" in e) {
        this.checkpoints++;
        const p: Record<string, string> = {};
        const h = machineHash(m, p);
        if (h !== e.h) {
          this.divergence = `diverged at step ${step}: recorded ${e.h}, replayed ${h} ` +
            `(hash:instructions)${differing(e.p, p)}`;
          return "stop";
        }
      } else if ("end" in e) {
        // The recording ended here without the guest ending it (stop, limit, Ctrl-C).
        this.#reachedEnd = true;
        return "stop";
      }
    }
    return input;
  }

  fed(): void {}

  /** Steps at which the recording held guest time while idle (device_log.ts). */
  holdSteps(): Set<number> {
    return new Set(this.#entries.filter((e) => "hold" in e).map((e) => e.s));
  }

  /** The block device infos a `vmesh boot` recording logged, by device. */
  blockInfos(): Map<string, { sizeBytes: number; readOnly: boolean; discard: boolean }> {
    const out = new Map<string, { sizeBytes: number; readOnly: boolean; discard: boolean }>();
    for (const e of this.#entries) if ("info" in e) out.set(e.info, e.v);
    return out;
  }

  /** Where the replay is in the log (for a rewind to the top of this step). */
  savePoint(): { at: number; checkpoints: number } {
    return { at: this.#at, checkpoints: this.checkpoints };
  }

  /** Goes back to a point `savePoint` gave (the machine is put back to the same step). */
  loadPoint(p: { at: number; checkpoints: number }): void {
    this.#at = p.at;
    this.checkpoints = p.checkpoints;
  }

  end(_step: number, m: Machine, code: number): void {
    if (this.divergence !== undefined) return;
    if (m.stopCause === "stopped" && !this.#reachedEnd) {
      this.stoppedEarly = true; // nothing to compare the end with
      return;
    }
    const rest = this.#entries.slice(this.#at);
    const final = rest.find((e): e is Extract<Entry, { h: string }> => "h" in e);
    const rec = this.recordedEnd;
    if (final) {
      // The guest ended the recorded run: the replay must end the same way, in the same state.
      this.checkpoints++;
      const p: Record<string, string> = {};
      const h = machineHash(m, p);
      if (h !== final.h || rec?.code !== code) {
        this.divergence = `ended with code ${code} in state ${h}; the recording with code ` +
          `${rec?.code} in state ${final.h} (hash:instructions)${differing(final.p, p)}`;
      }
    } else if (rest.some((e) => "in" in e)) {
      this.divergence = `ended with code ${code} after ${m.instret} instructions, before ` +
        `the recording's remaining input`;
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
