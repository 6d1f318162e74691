/**
 * Files the broker keeps across restarts (the lease snapshot, the rotation journal, the file token
 * store): written atomically so a crash or a full disk leaves either the old or the new content,
 * never a torn file, and created owner-only because several of them sit next to secrets.
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { readCapped } from './capped-read.js';
import { VfbError } from './errors.js';

/**
 * Equivalent to: write to a temp file in the same directory, fsync it, rename over the target,
 * fsync the directory (so the rename itself survives a power cut).
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw fileError('write', path, err);
  }
}

/**
 * Removes what writeFileAtomic leaves behind when the process is killed between creating its
 * temporary file and renaming it. Call before the first write, while no write can be under way.
 */
export async function removeStaleTemporaries(path: string): Promise<void> {
  const dir = dirname(path);
  const prefix = `.${basename(path)}.`;
  const names = await readdir(dir).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => n.startsWith(prefix) && n.endsWith('.tmp'))
      .map((n) => unlink(join(dir, n)).catch(() => undefined)),
  );
}

/** Far above any state file vfbroker writes (a lease snapshot of 100,000 leases is about 20 MB). */
export const MAX_STATE_FILE_BYTES = 64 * 1024 * 1024;

/**
 * Parsed JSON of a file, or null when it does not exist. A file over `maxBytes` is refused without
 * being read (or, grown since fstat, one byte past the cap): whatever wrote it, reading it whole
 * could take the broker's memory at start.
 */
export async function readJsonFile(path: string, maxBytes = MAX_STATE_FILE_BYTES): Promise<unknown> {
  let text: string;
  try {
    const fh = await open(path, 'r');
    try {
      const { size } = await fh.stat();
      const bytes = size > maxBytes ? null : await readCapped(fh, size, maxBytes);
      if (bytes === null || bytes.length > maxBytes) {
        throw new VfbError(
          'STORE_CORRUPT',
          `${path} is larger than ${maxBytes} bytes, more than vfbroker writes`,
          {
            hint: 'move the file aside; vfbroker recreates it',
          },
        );
      }
      text = bytes.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    if (err instanceof VfbError) throw err;
    if (errnoOf(err) === 'ENOENT') return null;
    throw fileError('read', path, err);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new VfbError('STORE_CORRUPT', `${path} is not valid JSON`, {
      hint: 'move the file aside; vfbroker recreates it',
    });
  }
}

export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

/** `cannot <op> <path>: <why>`, UNAVAILABLE, for a failed read or write of a state file. */
export function fileError(op: string, path: string, err: unknown): VfbError {
  const errno = errnoOf(err) ?? 'EIO';
  const why: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EROFS: 'read-only file system',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    ENOENT: 'directory does not exist',
    EDQUOT: 'disk quota exceeded',
  };
  return new VfbError('UNAVAILABLE', `cannot ${op} ${path}: ${why[errno] ?? errno}`, {
    hint: 'check the state directory: free space, mount options and ownership',
    details: { errno, path },
  });
}
