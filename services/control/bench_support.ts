/**
 * What the control plane's benches share: service processes started until ready, and N
 * `qemu-system-riscv64` booting the ./vmesh guest at once (the reference they are timed against).
 * @module
 */
import { GUEST_SHELL_MARKER, type GuestImages, qemuArgs } from "../../guest/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Spawns service `name` and waits for its ready line; returns the process and that line. */
export async function benchService(
  name: string,
  args: string[],
  natsUrl: string,
): Promise<{ child: Deno.ChildProcess; ready: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}services/${name}/main.ts`, ...args],
    env: { NATS_URL: natsUrl, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes(" ready: ")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`${name} exited before ready: ${text}`);
    text += value;
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  (async () => {
    while (!(await lines.read()).done) { /* drain */ }
  })().catch(() => {});
  return { child, ready: text };
}

/** Boots `n` QEMUs on `images` at once; ms until the last one shows the shell marker. */
export async function qemuBootMany(images: GuestImages, n: number): Promise<number> {
  const t0 = performance.now();
  const ends = await Promise.all(Array.from({ length: n }, async () => {
    const child = new Deno.Command("qemu-system-riscv64", {
      args: qemuArgs(images, { disk: false, net: false }),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const r = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes(GUEST_SHELL_MARKER)) {
      const { value, done } = await r.read();
      if (done) throw new Error(`qemu ended: ${text}`);
      text += value;
    }
    const at = performance.now();
    child.kill("SIGKILL");
    await child.status;
    return at;
  }));
  return Math.max(...ends) - t0;
}

/** Stops bench processes, last started first. */
export async function stopAll(procs: Deno.ChildProcess[]): Promise<void> {
  for (const p of [...procs].reverse()) {
    try {
      p.kill("SIGTERM");
    } catch { /* gone */ }
    await p.status;
  }
}
