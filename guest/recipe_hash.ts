/**
 * The cache key of the guest images: a hash over the recipe files (guest/recipe/), the
 * recipe revision of the build code, and the versions of the Debian packages used.
 */

import { createHash } from "node:crypto";

/**
 * Bump when a build step (kernel_build.ts, busybox_build.ts, initramfs.ts, data_disk.ts)
 * changes what it produces, so cached images built by the old code are not reused.
 */
export const RECIPE_REVISION = 3;

/** The recipe directory holding kernel.config, busybox.config, init and data/. */
export const RECIPE_DIR = new URL("./recipe/", import.meta.url);

/** Relative paths of every file under `dir`, sorted. */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const rel = prefix + e.name;
    if (e.isDirectory) out.push(...await listFiles(`${dir}/${e.name}`, `${rel}/`));
    else if (e.isFile) out.push(rel);
  }
  return out.sort();
}

/** What the hash covers, as recorded in the manifest. */
export interface RecipeInputs {
  revision: number;
  /** sha256 of each recipe file, by path relative to guest/recipe/. */
  files: Record<string, string>;
  /** Debian package versions (binary packages installed, busybox source version). */
  packages: Record<string, string>;
}

/** Hashes the recipe files and returns the inputs plus the 16-hex-digit key over them. */
export async function recipeKey(
  recipeDir: string,
  packages: Record<string, string>,
): Promise<{ key: string; inputs: RecipeInputs }> {
  const files: Record<string, string> = {};
  for (const rel of await listFiles(recipeDir)) {
    const bytes = await Deno.readFile(`${recipeDir}/${rel}`);
    files[rel] = createHash("sha256").update(bytes).digest("hex");
  }
  const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => a < b ? -1 : 1));
  const inputs: RecipeInputs = { revision: RECIPE_REVISION, files, packages: sorted };
  const key = createHash("sha256").update(JSON.stringify(inputs)).digest("hex").slice(0, 16);
  return { key, inputs };
}
