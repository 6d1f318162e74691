/**
 * Reading an untrusted or possibly oversized file with a cap: at most one byte past it is read, so
 * the caller can tell a file over the cap even when it grew after fstat.
 */
import type { FileHandle } from 'node:fs/promises';

/** Up to min(`statSize`, `maxBytes`) + 1 bytes of `handle`; more than `maxBytes` means over the cap. */
export async function readCapped(handle: FileHandle, statSize: number, maxBytes: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.min(statSize, maxBytes) + 1);
  let length = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length === buf.length) break;
  }
  return buf.subarray(0, length);
}
