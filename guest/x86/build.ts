/**
 * The x86-64 KVM guest recipe: Debian's unmodified amd64 kernel (`linux-image-amd64`'s
 * dependency, extracted with dpkg-deb) and an initramfs with Debian's `busybox-static` and the
 * shared /init (its `poweroff -f` becomes `reboot -f`: this machine has no ACPI power-off, the
 * i8042 reset ends the VM). Cached under `<cache>/x86-<hash>/` keyed by the package versions.
 */
import { encodeCpio, gzipArchive, initramfsEntries } from "../initramfs.ts";
import { defaultCacheDir } from "../build.ts";
import { extractVmlinux } from "./vmlinux.ts";

/** Debian packages the x86 guest is made from (downloaded with apt-get download, not installed). */
export const X86_GUEST_PACKAGES = ["linux-image-amd64", "busybox-static"] as const;

/** The built x86 guest files. */
export interface X86GuestImages {
  dir: string;
  /** The bzImage (vmlinuz). */
  kernel: string;
  /** The ELF vmlinux decompressed from it (boots without the bzImage decompressor). */
  vmlinux: string;
  initramfs: string;
  /** The same initramfs uncompressed: nothing to inflate in the guest kernel. */
  initramfsCpio: string;
  /** The kernel package actually used, e.g. linux-image-6.1.0-57-amd64 6.1.192-3. */
  kernelPackage: string;
}

async function run(cmd: string, args: string[], cwd?: string): Promise<string> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return text;
}

/** The candidate version of a package (apt-cache policy), or a clear error. */
async function candidate(pkg: string): Promise<string> {
  const text = await run("apt-cache", ["policy", pkg]);
  const m = text.match(/Candidate: (\S+)/);
  if (!m || m[1] === "(none)") {
    throw new Error(`Debian package ${pkg} is not available: run apt-get update`);
  }
  return m[1];
}

/** The linux-image-6.1.0-N-amd64 package the metapackage depends on. */
async function kernelPackage(): Promise<string> {
  const text = await run("apt-cache", ["depends", "linux-image-amd64"]);
  const m = text.match(/Depends: (linux-image-[0-9][^\s]*-amd64)\b/);
  if (!m) throw new Error("linux-image-amd64 depends on no linux-image-*-amd64 package");
  return m[1];
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Builds (or finds cached) the x86 guest kernel and initramfs. */
export async function ensureX86Guest(cacheDir = defaultCacheDir()): Promise<X86GuestImages> {
  const kpkg = await kernelPackage();
  const kver = await candidate(kpkg);
  const bver = await candidate("busybox-static");
  const init = await Deno.readFile(new URL("../recipe/init", import.meta.url));
  const key = await hashKey(`${kpkg} ${kver}\nbusybox-static ${bver}\n`, init);
  const dir = `${cacheDir}/x86-${key}`;
  const images = {
    dir,
    kernel: `${dir}/vmlinuz`,
    vmlinux: `${dir}/vmlinux`,
    initramfs: `${dir}/initramfs.cpio.gz`,
    initramfsCpio: `${dir}/initramfs.cpio`,
    kernelPackage: `${kpkg} ${kver}`,
  };
  if (await exists(images.initramfs) && await exists(images.kernel)) {
    if (!await exists(images.vmlinux)) await writeVmlinux(images);
    if (!await exists(images.initramfsCpio)) await writeCpio(images);
    return images;
  }
  const work = `${dir}.tmp`;
  await Deno.remove(work, { recursive: true }).catch(() => {});
  await Deno.mkdir(`${work}/debs`, { recursive: true });
  console.error(
    `vmesh guest: downloading ${kpkg} ${kver} and busybox-static ${bver} (apt-get download)`,
  );
  await run("apt-get", ["download", `${kpkg}=${kver}`, `busybox-static=${bver}`], `${work}/debs`);
  for (const deb of Deno.readDirSync(`${work}/debs`)) {
    await run("dpkg-deb", ["-x", `${work}/debs/${deb.name}`, `${work}/root`]);
  }
  const vmlinuz = [...Deno.readDirSync(`${work}/root/boot`)].find((e) =>
    e.name.startsWith("vmlinuz-")
  );
  if (!vmlinuz) throw new Error(`${kpkg} holds no /boot/vmlinuz-*`);
  const cpio = await initramfsFrom(`${work}/root/bin/busybox`, init);
  await Deno.mkdir(dir, { recursive: true });
  await Deno.copyFile(`${work}/root/boot/${vmlinuz.name}`, images.kernel);
  await Deno.copyFile(
    `${work}/root/boot/config-${vmlinuz.name.slice("vmlinuz-".length)}`,
    `${dir}/config`,
  );
  await Deno.writeFile(images.initramfs, gzipArchive(cpio));
  await writeVmlinux(images);
  await writeCpio(images);
  await Deno.remove(work, { recursive: true });
  return images;
}

/** The initramfs: Debian's busybox-static with its applet links and the shared /init. */
async function initramfsFrom(busyboxPath: string, init: Uint8Array): Promise<Uint8Array> {
  const links = (await run(busyboxPath, ["--list-full"])).split("\n").filter(Boolean).map((l) =>
    `/${l}`
  );
  // No ACPI power-off on this machine: the i8042 reset ends the VM.
  const x86Init = new TextEncoder().encode(
    new TextDecoder().decode(init).replaceAll("poweroff -f", "reboot -f"),
  );
  return encodeCpio(initramfsEntries(await Deno.readFile(busyboxPath), links, x86Init));
}

/** The cached busybox-static initramfs alone (no Debian kernel download). */
export interface X86Initramfs {
  dir: string;
  /** Uncompressed cpio (the minimal kernel has no decompressor). */
  initramfsCpio: string;
  initramfs: string;
}

/**
 * Returns the busybox-static initramfs, cached as `<cache>/x86-initramfs-<key>/` keyed by the
 * busybox-static version and the recipe's /init; for the minimal kernel (guest/x86/kernel.ts).
 */
export async function ensureX86Initramfs(cacheDir = defaultCacheDir()): Promise<X86Initramfs> {
  const bver = await candidate("busybox-static");
  const init = await Deno.readFile(new URL("../recipe/init", import.meta.url));
  const key = await hashKey(`busybox-static ${bver}\n`, init);
  const dir = `${cacheDir}/x86-initramfs-${key}`;
  const images = {
    dir,
    initramfsCpio: `${dir}/initramfs.cpio`,
    initramfs: `${dir}/initramfs.cpio.gz`,
  };
  if (await exists(images.initramfs)) return images;
  const work = `${dir}.tmp-${Deno.pid}`;
  await Deno.mkdir(`${work}/debs`, { recursive: true });
  try {
    console.error(`vmesh guest: downloading busybox-static ${bver} (apt-get download)`);
    await run("apt-get", ["download", `busybox-static=${bver}`], `${work}/debs`);
    for (const deb of Deno.readDirSync(`${work}/debs`)) {
      await run("dpkg-deb", ["-x", `${work}/debs/${deb.name}`, `${work}/root`]);
    }
    const cpio = await initramfsFrom(`${work}/root/bin/busybox`, init);
    await Deno.mkdir(`${work}/out`);
    await Deno.writeFile(`${work}/out/initramfs.cpio`, cpio);
    await Deno.writeFile(`${work}/out/initramfs.cpio.gz`, gzipArchive(cpio));
    await Deno.rename(`${work}/out`, dir).catch(async (e) => {
      if (!await exists(images.initramfs)) throw e;
    });
    return images;
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** 16 hex digits of sha256 over a text and a file's bytes. */
async function hashKey(text: string, bytes: Uint8Array): Promise<string> {
  const head = new TextEncoder().encode(text);
  const all = new Uint8Array(head.length + bytes.length);
  all.set(head);
  all.set(bytes, head.length);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return [...digest.slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Inflates the cached initramfs to a plain cpio archive (written whole or not at all). */
async function writeCpio(images: X86GuestImages): Promise<void> {
  const gz = await Deno.readFile(images.initramfs);
  const cpio = new Uint8Array(
    await new Response(new Blob([gz]).stream().pipeThrough(new DecompressionStream("gzip")))
      .arrayBuffer(),
  );
  await Deno.writeFile(`${images.initramfsCpio}.tmp`, cpio);
  await Deno.rename(`${images.initramfsCpio}.tmp`, images.initramfsCpio);
}

/** Decompresses the cached bzImage to the ELF vmlinux (written whole or not at all). */
async function writeVmlinux(images: X86GuestImages): Promise<void> {
  const elf = await extractVmlinux(await Deno.readFile(images.kernel));
  await Deno.writeFile(`${images.vmlinux}.tmp`, elf);
  await Deno.rename(`${images.vmlinux}.tmp`, images.vmlinux);
}

if (import.meta.main) {
  const images = await ensureX86Guest();
  console.log(JSON.stringify(images, null, 2));
}
