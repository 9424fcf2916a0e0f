/**
 * The guest's ext4 data disk, made with `mke2fs -t ext4 -d <dir>` (no mounting, no loop
 * devices): the recipe's data/ files plus pattern.bin, a 32 MiB file of known content.
 */

import { createHash } from "node:crypto";
import { Reporter, runStep } from "./step_runner.ts";

/** Size of the ext4 image. */
export const DATA_DISK_MIB = 64;
/** Size of pattern.bin. */
export const PATTERN_BYTES = 32 * 1024 * 1024;
const SECTOR = 512;
// Fixed so the image is the same on every build.
const FS_UUID = "5f1e5a3c-7b0d-4c8e-9a61-0d3c2b7e9f10";

/** The text that starts sector `n` of pattern.bin. */
export function patternSectorHeader(n: number): string {
  return `vmesh pattern sector ${String(n).padStart(8, "0")}`;
}

/** Content of pattern.bin: per 512-byte sector, its header line, dots, and a newline. */
export function patternBytes(bytes = PATTERN_BYTES): Uint8Array {
  const out = new Uint8Array(bytes).fill(0x2e); // '.'
  const enc = new TextEncoder();
  for (let n = 0; n * SECTOR < bytes; n++) {
    const base = n * SECTOR;
    out.set(enc.encode(patternSectorHeader(n)).subarray(0, Math.min(SECTOR, bytes - base)), base);
    if (base + SECTOR <= bytes) out[base + SECTOR - 1] = 0x0a;
  }
  return out;
}

/** What the data disk holds, recorded in the manifest. */
export interface DataDiskInfo {
  sizeBytes: number;
  label: string;
  uuid: string;
  pattern: { path: string; bytes: number; sha256: string };
}

/** Copies recipe data files into `stageDir`, adds pattern.bin, and makes the image. */
export async function buildDataDisk(o: {
  recipeDataDir: string;
  stageDir: string;
  imagePath: string;
  logPath: string;
  report: Reporter;
}): Promise<DataDiskInfo> {
  await Deno.mkdir(o.stageDir, { recursive: true });
  for await (const e of Deno.readDir(o.recipeDataDir)) {
    if (e.isFile) await Deno.copyFile(`${o.recipeDataDir}/${e.name}`, `${o.stageDir}/${e.name}`);
  }
  const pattern = patternBytes();
  await Deno.writeFile(`${o.stageDir}/pattern.bin`, pattern);
  // mke2fs -d copies the files' times; fixed times make the image the same on every build.
  for await (const e of Deno.readDir(o.stageDir)) await Deno.utime(`${o.stageDir}/${e.name}`, 0, 0);
  await Deno.utime(o.stageDir, 0, 0);
  const label = "vmesh-data";
  await runStep({
    name: "data disk: mke2fs",
    cmd: [
      "mke2fs",
      "-q",
      "-F",
      "-t",
      "ext4",
      "-L",
      label,
      "-U",
      FS_UUID,
      "-E",
      `root_owner=0:0,hash_seed=${FS_UUID}`,
      "-d",
      o.stageDir,
      o.imagePath,
      `${DATA_DISK_MIB}M`,
    ],
    env: { E2FSPROGS_FAKE_TIME: "1" },
    logPath: o.logPath,
    report: o.report,
  });
  // ctime cannot be set on the staged files, so it is zeroed in the image afterwards.
  const paths = ["/", "/lost+found"];
  for await (const e of Deno.readDir(o.stageDir)) paths.push(`/${e.name}`);
  const commands = `${o.stageDir}.debugfs`;
  await Deno.writeTextFile(commands, paths.map((p) => `set_inode_field ${p} ctime 0\n`).join(""));
  await runStep({
    name: "data disk: debugfs (fixed ctime)",
    cmd: ["debugfs", "-w", "-f", commands, o.imagePath],
    env: { E2FSPROGS_FAKE_TIME: "1" },
    logPath: o.logPath,
    report: o.report,
  });
  return {
    sizeBytes: DATA_DISK_MIB * 1024 * 1024,
    label,
    uuid: FS_UUID,
    pattern: {
      path: "pattern.bin",
      bytes: pattern.length,
      sha256: createHash("sha256").update(pattern).digest("hex"),
    },
  };
}
