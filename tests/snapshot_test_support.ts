/**
 * Helpers of the snapshot tests: `./vmesh` as a user runs it, polling for a condition, and
 * the tick a guest loop wrote to sector 1 of its disk (`echo "disk N" | dd ... seek=1`), read
 * from a COW overlay file; a guest loop that also runs what is typed on its console, and the MD5
 * of its disk as the guest reads it and as a COW point shows it on the host.
 * @module
 */
import { createHash } from "node:crypto";
import { type Bus, consoleMsgs } from "@vmesh/bus";
import type { ConsoleCapture } from "../cli/boot_console.ts";
import { CowOverlay } from "../services/disk/cow_overlay.ts";

const MAIN = new URL("../cli/main.ts", import.meta.url).pathname;

/** Spawns `./vmesh ARGS` (cli/main.ts) with `env` added, output piped. */
export function vmesh(args: string[], env: Record<string, string>): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", MAIN, ...args],
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs `./vmesh ARGS` to its end. */
export async function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await vmesh(args, env).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Resolves once `ok()` holds; rejects naming `what` after `ms`. */
export async function until(
  what: string,
  ok: () => boolean | Promise<boolean>,
  ms = 180_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The "disk N" the guest wrote to sector 1 of its disk, as overlay file `overlay` holds it (0: none). */
export async function diskTick(overlay: string): Promise<number> {
  const d = await CowOverlay.open(overlay, { readOnly: true });
  try {
    const m = /^disk (\d+)\n/.exec(new TextDecoder().decode(await d.read(512, 512)));
    return m ? Number(m[1]) : 0;
  } finally {
    d.close();
  }
}

/** Bytes of the disk the MD5s cover: 16 MiB from 64 KiB on (past the counter's sector). */
const SUM_FROM = 65536, SUM_BYTES = 16 << 20;

/** MD5 of the disk a COW point over `base` shows, over the {@link SUM_BYTES} the guest sums. */
export async function diskMd5(point: string, base: string): Promise<string> {
  const d = await CowOverlay.open(point, { readOnly: true, basePath: base });
  try {
    const h = createHash("md5");
    const end = Math.min(d.info().sizeBytes, SUM_FROM + SUM_BYTES);
    for (let o = SUM_FROM; o < end; o += 1 << 20) {
      h.update(await d.read(o, Math.min(1 << 20, end - o)));
    }
    return h.digest("hex");
  } finally {
    d.close();
  }
}

/** The tick numbers of {@link EVAL_LOOP} on a console. */
export function keptTicks(text: string): number[] {
  return [...text.matchAll(/tick (\d+) kept\r?\n/g)].map((m) => Number(m[1]));
}

/** A shell running each line typed on the console, and a counter writing each tick to sector 1. */
export const EVAL_LOOP = '(while read l; do eval "$l"; done </dev/ttyS0) & echo kept > /tmp/f; ' +
  'i=0; while true; do i=$((i+1)); echo "disk $i" | dd of=/dev/vda bs=512 seek=1 conv=fsync ' +
  '2>/dev/null; echo "tick $i $(cat /tmp/f)"; sleep 1; done';

/**
 * The MD5 of 16 MiB of /dev/vda from byte 64 KiB on as guest `vm` (running {@link EVAL_LOOP}) reads it
 * with its page cache dropped, typed on its console and read back from `cap`.
 */
export async function guestDiskMd5(bus: Bus, vm: string, cap: ConsoleCapture): Promise<string> {
  const cmd = "sync; echo 3 > /proc/sys/vm/drop_caches; " +
    'echo "sum $(dd if=/dev/vda bs=64k skip=1 count=256 2>/dev/null | md5sum)"\n';
  await bus.request({ vm, device: "console" }, consoleMsgs.ops.send, {
    seq: 0,
    data: new TextEncoder().encode(cmd),
  });
  await until(`${vm}'s disk sum`, () => /sum [0-9a-f]{32}/.test(cap.text), 60_000);
  return /sum ([0-9a-f]{32})/.exec(cap.text)![1];
}

/** What a snapshot test started: killed, closed and removed whatever happened. */
export async function cleanUp(o: {
  procs: (Deno.ChildProcess | undefined)[];
  closers: { close(): unknown }[];
  nats: { stop(): Promise<void> }[];
  dir: string;
}): Promise<void> {
  for (const c of o.closers) await c.close();
  for (const c of o.procs) {
    if (!c) continue;
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
    await c.output().catch(() => {});
  }
  for (const n of o.nats) await n.stop();
  await Deno.remove(o.dir, { recursive: true });
}
