/**
 * A Debian 12 base image made on this machine: `debootstrap --variant=minbase bookworm` into a
 * temporary root, then `podman import` of its tarball. It stands in for `debian:bookworm-slim`
 * where no container registry is reachable; the Dockerfiles take it through their `BASE` arg.
 *
 * ```sh
 * deno run -A containers/base_image.ts            # builds localhost/vmesh-base:bookworm once
 * podman build --build-arg BASE=localhost/vmesh-base:bookworm ...
 * ```
 * @module
 */

import { podmanEnv } from "./podman_env.ts";

/** The local image name the Dockerfiles' `BASE` arg is given on machines without a registry. */
export const BASE_IMAGE = "localhost/vmesh-base:bookworm";

/** Bumped when the recipe changes, so an image from an older recipe is built again. */
export const BASE_REVISION = "3";
const REVISION_LABEL = "org.vmesh.base.revision";

/** What {@link ensureBaseImage} did. */
export interface BaseImageResult {
  image: string;
  /** False when the image already existed. */
  built: boolean;
  /** Seconds spent in debootstrap and podman import (0 when cached). */
  seconds: number;
}

/** Options of {@link ensureBaseImage}. */
export interface BaseImageOptions {
  image?: string;
  /** Debian mirror; default: the host's apt source (see {@link hostDebianMirror}). */
  mirror?: string;
  /** Security mirror; default: the host's, unless `mirror` is given. */
  security?: string;
  /** Environment for podman (CONTAINERS_CONF); default {@link podmanEnv}. */
  env?: Record<string, string>;
  /** Progress lines; default stderr. */
  report?: (line: string) => void;
}

/** A failed step, with the command and the tail of its output. */
export class BaseImageError extends Error {}

/**
 * The mirror this host's apt uses for `suite`: the first `URIs:` of a deb822 source naming it
 * (Suites), else the first `deb URL SUITE` line of /etc/apt/sources.list; undefined if none.
 *
 * @example
 * ```ts
 * const mirror = await hostDebianMirror(); // "http://deb.debian.org/debian"
 * const security = await hostDebianMirror("bookworm-security"); // ".../debian-security"
 * ```
 */
export async function hostDebianMirror(
  suite = "bookworm",
  etc = "/etc/apt",
): Promise<string | undefined> {
  const texts: string[] = [];
  try {
    for await (const e of Deno.readDir(`${etc}/sources.list.d`)) {
      if (e.isFile && e.name.endsWith(".sources")) {
        texts.push(await Deno.readTextFile(`${etc}/sources.list.d/${e.name}`));
      }
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  for (const text of texts.sort()) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const uris = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1].split(/\s+/) ?? [];
      if (uris && suites.includes(suite)) return uris.replace(/\/$/, "");
    }
  }
  try {
    const list = await Deno.readTextFile(`${etc}/sources.list`);
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${suite}\\s`, "m");
    const m = line.exec(list);
    if (m) return m[1].replace(/\/$/, "");
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  return undefined;
}

/**
 * The image's /etc/apt/sources.list.d/debian.sources, shaped as debian:bookworm-slim's:
 * bookworm and bookworm-updates from `mirror`, bookworm-security from `security` if given.
 *
 * @example
 * ```ts
 * debianSources("http://deb.debian.org/debian", "http://deb.debian.org/debian-security");
 * ```
 */
export function debianSources(mirror: string, security?: string): string {
  const stanza = (uri: string, suites: string) =>
    `Types: deb\nURIs: ${uri}\nSuites: ${suites}\nComponents: main\n` +
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
  return stanza(mirror, "bookworm bookworm-updates") +
    (security ? `\n${stanza(security, "bookworm-security")}` : "");
}

async function run(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  let out;
  try {
    out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new BaseImageError(`${cmd} is not installed: apt-get install ${cmd}`);
    }
    throw e;
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    const tail = text.trim().split("\n").slice(-8).join("\n");
    throw new BaseImageError(`${cmd} ${args.join(" ")} failed (exit ${out.code}):\n${tail}`);
  }
  return text;
}

/**
 * Builds the base image unless podman has it from this recipe revision. Needs root (debootstrap, rootful
 * podman) and a reachable Debian mirror; takes about half a minute.
 *
 * @example
 * ```ts
 * const { image } = await ensureBaseImage(); // "localhost/vmesh-base:bookworm"
 * ```
 */
export async function ensureBaseImage(opts: BaseImageOptions = {}): Promise<BaseImageResult> {
  const image = opts.image ?? BASE_IMAGE;
  const env = opts.env ?? await podmanEnv();
  const report = opts.report ?? ((l: string) => console.error(l));
  const have = await new Deno.Command("podman", {
    args: ["image", "inspect", "--format", `{{index .Labels "${REVISION_LABEL}"}}`, image],
    env,
    stdout: "piped",
    stderr: "null",
  }).output();
  if (have.success && new TextDecoder().decode(have.stdout).trim() === BASE_REVISION) {
    return { image, built: false, seconds: 0 };
  }
  const mirror = opts.mirror ?? await hostDebianMirror();
  if (!mirror) {
    throw new BaseImageError(
      "no Debian bookworm mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; " +
        "pass one (e.g. http://deb.debian.org/debian)",
    );
  }
  // An explicit mirror stands alone; the host's security source goes with the host's mirror.
  const security = opts.security ??
    (opts.mirror ? undefined : await hostDebianMirror("bookworm-security"));
  const t0 = performance.now();
  const tmp = await Deno.makeTempDir({ prefix: "vmesh-base-" });
  try {
    const root = `${tmp}/root`;
    report(`base image: debootstrap --variant=minbase bookworm from ${mirror}`);
    await run("debootstrap", ["--variant=minbase", "bookworm", root, mirror]);
    // Updates and security as in debian:bookworm-slim, so builds get the host's package versions.
    await Deno.remove(`${root}/etc/apt/sources.list`).catch(() => {});
    await Deno.writeTextFile(
      `${root}/etc/apt/sources.list.d/debian.sources`,
      debianSources(mirror, security),
    );
    // Package lists and downloaded .debs are dropped, as in debian:bookworm-slim.
    await run("tar", [
      "-C",
      root,
      "--exclude=./var/lib/apt/lists/*",
      "--exclude=./var/cache/apt/*",
      "-cf",
      `${tmp}/root.tar`,
      ".",
    ]);
    report(`base image: podman import as ${image}`);
    await run("podman", [
      "import",
      "--change",
      `CMD ["/bin/bash"]`,
      "--change",
      `LABEL ${REVISION_LABEL}=${BASE_REVISION}`,
      `${tmp}/root.tar`,
      image,
    ], env);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
  return { image, built: true, seconds: (performance.now() - t0) / 1000 };
}

if (import.meta.main) {
  try {
    const r = await ensureBaseImage();
    console.log(
      r.built ? `${r.image} built in ${r.seconds.toFixed(1)} s` : `${r.image} already exists`,
    );
  } catch (e) {
    console.error(`base image: ${(e as Error).message}`);
    Deno.exit(1);
  }
}
