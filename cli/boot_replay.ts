/**
 * `./vmesh boot --replay FILE`: the recorded VM run again in this process, with no bus and no
 * device service (services/cpu/replay/boot_replay.ts); the console goes to stdout, or in batch
 * mode the command's output and status as a live boot gives them. With `--gdb`, gdb drives the
 * replay, backwards too (reverse-stepi, reverse-continue).
 */
import { parseBatchOutput } from "../guest/mod.ts";
import { parseGdbAddress } from "../services/cpu/gdb/gdb_server.ts";
import { replayBoot } from "../services/cpu/replay/boot_replay.ts";
import { ReplayError } from "../services/cpu/replay/run_log.ts";
import type { BootArgs } from "./boot_args.ts";

/** Replays `o.replay` with the images and command line the boot would use; the exit code. */
export async function bootReplay(
  o: BootArgs,
  m: { bios: string | null; kernel: string; initrd?: string; append: string },
): Promise<number> {
  const batch = o.command !== undefined;
  const chunks: Uint8Array[] = [];
  const write = (b: Uint8Array) => {
    let done = 0;
    while (done < b.length) done += Deno.stdout.writeSync(b.subarray(done));
  };
  const t0 = performance.now();
  const gdb = o.gdb === undefined ? undefined : parseGdbAddress(o.gdb);
  if (typeof gdb === "string") {
    console.error(`vmesh boot: ${gdb}`);
    return 1;
  }
  let r;
  try {
    r = await replayBoot({
      log: o.replay!,
      ramSize: o.memory,
      harts: o.smp,
      bios: m.bios,
      kernel: m.kernel,
      initrd: m.initrd,
      append: m.append,
      output: (b) => batch ? chunks.push(b.slice()) : write(b),
      gdb,
      waitGdb: o.waitGdb,
      snapshotEvery: o.snapshotEvery,
      snapshotMemory: o.snapshotMemoryMiB === undefined ? undefined : o.snapshotMemoryMiB << 20,
      onGdbListening: (a) =>
        console.error(
          `vmesh boot: gdb stub on tcp:${a.hostname}:${a.port}${
            o.waitGdb ? ", waiting for gdb" : ""
          } (replay: reverse-stepi and reverse-continue work)`,
        ),
    });
  } catch (e) {
    if (!(e instanceof ReplayError)) throw e;
    console.error(`vmesh boot: ${e.message}`);
    return 1;
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(2);
  if (r.divergence !== undefined) {
    console.error(`vmesh boot: replay of ${o.replay} ${r.divergence}`);
    return 1;
  }
  const rev = r.reverse
    ? `; ${r.reverse.travels} travels back, ${r.reverse.snapshots} snapshots kept ` +
      `(${r.reverse.thinned} thinned, ${(r.reverse.heldBytes / 2 ** 20).toFixed(1)} MiB of RAM)`
    : "";
  console.error(
    `vmesh boot: replay of ${o.replay} matched ${r.checkpoints} checkpoints (${r.instructions} ` +
      `instructions, ${r.blockReplies} block replies, ${r.frames} frames, ${secs} s, no ` +
      `services${rev})${r.stoppedEarly ? "; stopped before the recording's end" : ""}`,
  );
  if (!batch || r.stoppedEarly) return r.code;
  const text = new TextDecoder().decode(
    chunks.reduce((a, b) => {
      const c = new Uint8Array(a.length + b.length);
      c.set(a);
      c.set(b, a.length);
      return c;
    }, new Uint8Array()),
  );
  const result = parseBatchOutput(text);
  if (!result) {
    console.error("vmesh boot: the command did not run to completion in the replay");
    return 1;
  }
  write(new TextEncoder().encode(result.output));
  return result.status;
}
