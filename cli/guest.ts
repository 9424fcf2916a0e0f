/**
 * `./vmesh guest`: builds (once, cached by recipe hash) the guest images from Debian
 * sources and prints where they are.
 */

import { ensureGuestImages, type GuestImages, StepError } from "../guest/mod.ts";

const USAGE = `Usage: ./vmesh guest [--force] [--print] [--out DIR]

Builds the guest images from Debian sources, once; later runs reuse the cache
(.vmesh/guest/<recipe hash>/) and return at once:
  Image               Linux 6.1 (linux-source-6.1, tinyconfig + guest/recipe/kernel.config)
  initramfs.cpio.gz   static busybox (Debian source package) + guest/recipe/init
  data.ext4           64 MiB ext4 data disk (README, pattern.bin)
  fw_jump.bin         OpenSBI firmware from the opensbi package
  manifest.json       recipe inputs, versions, sizes, build times

Options:
  --force     rebuild even if the images are cached
  --print     print the image paths as KEY=PATH lines (only them, on stdout)
  --out DIR   also copy the images into DIR
  -h, --help  show this help

Guest batch mode: a kernel command line with vmesh.cmd="<command>" (or
vmesh.cmd64=<base64>) makes /init run the command and power off.`;

/** Runs `vmesh guest`; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let force = false;
  let print = false;
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "-h" || a === "--help") {
      console.log(USAGE);
      return 0;
    } else if (a === "--force") force = true;
    else if (a === "--print") print = true;
    else if (a === "--out" && i + 1 < args.length) out = args[++i];
    else if (a.startsWith("--out=")) out = a.slice("--out=".length);
    else {
      console.error(`vmesh guest: unknown argument '${a}'\n\n${USAGE}`);
      return 2;
    }
  }
  let images: GuestImages;
  try {
    images = await ensureGuestImages({ force });
  } catch (e) {
    if (e instanceof StepError) {
      console.error(`vmesh guest: ${e.message}`);
      return 1;
    }
    console.error(`vmesh guest: ${(e as Error).message ?? e}`);
    return 1;
  }
  const paths: [string, string][] = [
    ["KERNEL", images.kernel],
    ["INITRAMFS", images.initramfs],
    ["DISK", images.disk],
    ["FIRMWARE", images.firmware],
    ["MANIFEST", images.manifest],
  ];
  if (out) {
    try {
      await Deno.mkdir(out, { recursive: true });
      for (const [, p] of paths) await Deno.copyFile(p, `${out}/${p.split("/").pop()}`);
    } catch (e) {
      console.error(`vmesh guest: cannot copy images to ${out}: ${(e as Error).message}`);
      return 1;
    }
  }
  if (print) {
    for (const [k, p] of paths) console.log(`${k}=${p}`);
  } else {
    console.error(`vmesh guest: images ${images.key} in ${images.dir}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
