/**
 * Reading an untrusted or possibly oversized file with a cap: at most one byte past it is read, so
 * the caller can tell a file over the cap. The size fstat gave is only where to start: a file that
 * grew since is read to its end (or to the cap), never cut short at the size it had.
 */
import type { FileHandle } from 'node:fs/promises';

/** `handle` from its position to its end, or `maxBytes` + 1 bytes of it: more than `maxBytes` means over the cap. */
export async function readCapped(handle: FileHandle, statSize: number, maxBytes: number): Promise<Buffer> {
  let buf = Buffer.alloc(Math.min(statSize, maxBytes) + 1);
  let length = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
    if (bytesRead === 0) break;
    length += bytesRead;
    if (length < buf.length) continue;
    if (length > maxBytes) break;
    // Full, and under the cap: the file grew after fstat.
    const grown = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
    buf.copy(grown, 0, 0, length);
    buf = grown;
  }
  return buf.subarray(0, length);
}
