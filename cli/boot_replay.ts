/**
 * `./vmesh boot --replay FILE`: the recorded VM run again in this process, with no bus and no
 * device service (services/cpu/replay/boot_replay.ts); the console goes to stdout, or in batch
 * mode the command's output and status as a live boot gives them.
 */
import { parseBatchOutput } from "../guest/mod.ts";
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
  console.error(
    `vmesh boot: replay of ${o.replay} matched ${r.checkpoints} checkpoints (${r.instructions} ` +
      `instructions, ${r.blockReplies} block replies, ${r.frames} frames, ${secs} s, no services)`,
  );
  if (!batch) return r.code;
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
