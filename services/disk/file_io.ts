/**
 * Positional read/write on a Deno.FsFile (Deno has no pread/pwrite). Callers serialize
 * access through an IoQueue because the file position is shared.
 * @module
 */

/** Reads `buf.length` bytes at `offset`; bytes past end of file are left as zero. */
export async function readAt(file: Deno.FsFile, offset: number, buf: Uint8Array): Promise<void> {
  if (buf.length === 0) return; // nothing to read: no seek (an offset past the FS's limit is EINVAL)
  await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < buf.length) {
    const n = await file.read(buf.subarray(done));
    if (n === null) break;
    done += n;
  }
  buf.fill(0, done);
}

/** Writes all of `data` at `offset`. */
export async function writeAt(file: Deno.FsFile, offset: number, data: Uint8Array): Promise<void> {
  await file.seek(offset, Deno.SeekMode.Start);
  let done = 0;
  while (done < data.length) done += await file.write(data.subarray(done));
}

/** Largest zero buffer written at once when zero-filling a range. */
const ZERO_CHUNK = 1 << 20;

/** Writes `length` zero bytes at `offset`, in bounded chunks. */
export async function zeroAt(file: Deno.FsFile, offset: number, length: number): Promise<void> {
  const zeros = new Uint8Array(Math.min(length, ZERO_CHUNK));
  for (let done = 0; done < length; done += zeros.length) {
    await writeAt(file, offset + done, zeros.subarray(0, Math.min(zeros.length, length - done)));
  }
}
