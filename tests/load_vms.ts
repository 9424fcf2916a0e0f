/**
 * Many VMs at once on one host, for the load test and bench: one nats-server, ONE disk
 * service process serving every VM's disk (a copy-on-write overlay each over the same
 * read-only base, `--drive` repeated), ONE switch, and a CPU service process per VM, all
 * started together. It times each guest to its shell prompt, reads each process's resident
 * memory at that moment, then types a command into every guest that writes a token only
 * that VM can compute to its own disk, reads it back past the page cache, and takes a DHCP
 * lease: cross-talk shows as a VM seeing another's token, a missing token or a shared
 * address. The same guests under QEMU (8 `qemu-system-riscv64` at once) for scale.
 * @module
 */

import { type Bus, connect, consoleMsgs, consoleSubject, startEmbeddedNats } from "@vmesh/bus";
import { ConsoleCapture } from "../cli/boot_console.ts";
import { switchArgs } from "../cli/vm_topology.ts";
import {
  ensureGuestImages,
  GUEST_PROMPT,
  type GuestImages,
  imageArgs,
  qemuArgs,
} from "../guest/mod.ts";
import { type ServiceProcess, startService } from "./services_harness.ts";

/** Resident memory of a process in KiB (VmRSS), 0 if it is gone. */
export function rssKiB(pid: number): number {
  try {
    const m = Deno.readTextFileSync(`/proc/${pid}/status`).match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The 1-minute load average and the number of CPUs, to say how loaded the host was. */
export function hostLoad(): { load1: number; cpus: number } {
  const load1 = Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  return { load1, cpus: navigator.hardwareConcurrency };
}

/** What one load run measured. */
export interface LoadRun {
  /** ms from starting the CPU services to each guest's prompt (index = VM). */
  promptMs: number[];
  /** ms until the last prompt. */
  allPromptsMs: number;
  /** VmRSS in KiB of each VM's CPU service at its prompt. */
  cpuRssKiB: number[];
  /** VmRSS in KiB of the shared processes once every guest is at its prompt. */
  sharedRssKiB: { nats: number; disk: number; net: number };
  /** Problems found by the isolation check (empty: none). */
  crossTalk: string[];
  /** The address each guest got from the shared switch's DHCP. */
  addresses: string[];
  /** Host load (1-min average) before the start and at the last prompt. */
  load: { before: number; atPrompts: number; cpus: number };
}

/** The token VM `i` computes in its shell (so the typed command does not contain it). */
const token = (i: number) => `load-token-${i * 1000 + 7}`;

/** Boots `n` VMs at once sharing one disk service and one switch; see the module doc. */
export async function bootMany(n: number, limitMs = 600_000): Promise<LoadRun> {
  const images = await ensureGuestImages();
  const dir = await Deno.makeTempDir({ prefix: "vmesh-load-" });
  const nats = await startEmbeddedNats();
  const procs: ServiceProcess[] = [];
  const captures: ConsoleCapture[] = [];
  let bus: Bus | undefined;
  try {
    bus = await connect({ url: nats.url, name: "load-test", log: () => {} });
    const names = Array.from({ length: n }, (_, i) => `load${i}`);
    const disk = await startService(
      "disk",
      names.flatMap((vm) => [
        "--drive",
        `vm=${vm},device=disk0,file=${images.disk},overlay=${dir}/${vm}.cow`,
      ]),
      nats.url,
    );
    procs.push(disk);
    const net = await startService("net", switchArgs("load"), nats.url);
    procs.push(net);
    for (const vm of names) captures.push(new ConsoleCapture(bus, vm));
    const before = hostLoad().load1;
    const t0 = performance.now();
    const cpus = await Promise.all(names.map((vm) =>
      startService("cpu", [
        "--vm",
        vm,
        "--memory",
        "262144K",
        ...imageArgs(images),
        "--append",
        "console=ttyS0",
        "--disk",
        "disk0",
        "--nic",
        "switch=load",
      ], nats.url)
    ));
    procs.push(...cpus);
    const promptMs: number[] = new Array(n).fill(-1);
    const cpuRssKiB: number[] = new Array(n).fill(0);
    const until = Date.now() + limitMs;
    while (promptMs.includes(-1)) {
      if (Date.now() > until) {
        const late = names.filter((_, i) => promptMs[i] < 0);
        throw new Error(`no prompt within ${limitMs / 1000} s on ${late.join(", ")}`);
      }
      captures.forEach((c, i) => {
        if (promptMs[i] < 0 && c.text.includes(GUEST_PROMPT)) {
          promptMs[i] = performance.now() - t0;
          cpuRssKiB[i] = rssKiB(cpus[i].child.pid);
        }
      });
      await new Promise((r) => setTimeout(r, 20));
    }
    const allPromptsMs = Math.max(...promptMs);
    const atPrompts = hostLoad().load1;
    const sharedRssKiB = {
      nats: rssKiB(nats.pid),
      disk: rssKiB(disk.child.pid),
      net: rssKiB(net.child.pid),
    };

    // Isolation: each guest writes its own token to its disk, reads it back from the disk
    // service (page cache dropped), lists its disk, and takes a lease from the shared switch.
    names.forEach((vm, i) => {
      // Output labels are computed in the guest ($((1))), so the echoed input never matches them.
      const cmd = `mount /dev/vda /mnt && echo load-token-$((${i}*1000+7)) > /mnt/who && sync && ` +
        `echo 3 > /proc/sys/vm/drop_caches && echo W$((1))H=$(cat /mnt/who) && ` +
        `echo F$((1))S=$(ls /mnt) && udhcpc -i eth0 -q -n -t 10 -T 2 >/dev/null 2>&1; ` +
        `echo A$((1))D=$(ip -4 addr show eth0 | grep -o 'inet [0-9.]*'); ` +
        `echo check-$((${i}+1))-done\n`;
      bus!.publish(consoleMsgs.byteBatch, consoleSubject(vm, "in"), {
        seq: 0,
        data: new TextEncoder().encode(cmd),
      });
    });
    const crossTalk: string[] = [];
    const addresses: string[] = [];
    for (const [i, c] of captures.entries()) {
      const done = `check-${i + 1}-done`;
      while (!c.text.includes(`\n${done}`) && !c.text.includes(`\r${done}`)) {
        if (Date.now() > until) throw new Error(`${names[i]}: no answer to the isolation check`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const who = c.text.match(/W1H=(\S*)/)?.[1];
      if (who !== token(i)) crossTalk.push(`${names[i]} read back '${who}' for ${token(i)}`);
      for (let j = 0; j < n; j++) {
        const other = new RegExp(`\\b${token(j)}\\b`);
        if (j !== i && other.test(c.text)) crossTalk.push(`${names[i]} saw ${token(j)}`);
      }
      const files = c.text.match(/F1S=([^\r\n]*)/)?.[1] ?? "";
      if (!/\bwho\b/.test(files)) crossTalk.push(`${names[i]}: /mnt/who missing (${files})`);
      const addr = c.text.match(/A1D=inet ([0-9.]+)/)?.[1] ?? "";
      if (!addr) crossTalk.push(`${names[i]}: no DHCP address`);
      else if (addresses.includes(addr)) crossTalk.push(`${names[i]}: address ${addr} given twice`);
      addresses.push(addr);
    }
    return {
      promptMs,
      allPromptsMs,
      cpuRssKiB,
      sharedRssKiB,
      crossTalk,
      addresses,
      load: { before, atPrompts, cpus: hostLoad().cpus },
    };
  } finally {
    for (const c of captures) c.close();
    await Promise.all(procs.map((p) => p.stop("SIGKILL")));
    await bus?.close();
    await nats.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** What the same number of QEMU guests measured. */
export interface QemuLoadRun {
  promptMs: number[];
  allPromptsMs: number;
  rssKiB: number[];
}

/** Boots `n` `qemu-system-riscv64` guests at once (same images, disk snapshot=on) to their prompt. */
export async function bootManyQemu(n: number, limitMs = 300_000): Promise<QemuLoadRun> {
  const images: GuestImages = await ensureGuestImages();
  const t0 = performance.now();
  const kids = Array.from({ length: n }, () =>
    new Deno.Command("qemu-system-riscv64", {
      args: qemuArgs(images, { net: false }),
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn());
  const promptMs: number[] = new Array(n).fill(-1);
  const rss: number[] = new Array(n).fill(0);
  try {
    await Promise.all(kids.map(async (k, i) => {
      let text = "";
      const dec = new TextDecoder();
      const timer = setTimeout(() => k.kill("SIGKILL"), limitMs);
      for await (const chunk of k.stdout) {
        text += dec.decode(chunk, { stream: true });
        if (text.includes(GUEST_PROMPT)) {
          promptMs[i] = performance.now() - t0;
          rss[i] = rssKiB(k.pid);
          break;
        }
      }
      clearTimeout(timer);
    }));
  } finally {
    for (const k of kids) {
      try {
        k.kill("SIGKILL");
      } catch { /* gone */ }
      await k.status;
    }
  }
  if (promptMs.includes(-1)) throw new Error(`a QEMU guest did not reach its prompt`);
  return { promptMs, allPromptsMs: Math.max(...promptMs), rssKiB: rss };
}
