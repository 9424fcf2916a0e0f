/**
 * Page identity: the lowercase hex SHA-256 of the page bytes.
 * @module
 */

const HASH = /^[0-9a-f]{64}$/;

/** Whether `s` is a lowercase hex SHA-256 digest. */
export function isPageHash(s: string): boolean {
  return HASH.test(s);
}

/** The lowercase hex SHA-256 of `data`. */
export async function pageHash(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", data as BufferSource));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}
