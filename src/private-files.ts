/**
 * Files and directories that hold secrets (token files, AppRole credentials, the file store): they
 * must be ours and closed to group and others, or we refuse them — a secret another user could read
 * or replace is not a secret. Checks are made on the opened descriptor (fstat), not on the path, so a
 * file swapped between check and read is still the file checked; O_NOFOLLOW refuses symlinks.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open } from 'node:fs/promises';
import { VfbError } from './errors.js';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = constants;

function ourUid(): number {
  // Linux-only service: geteuid always exists there.
  return process.geteuid?.() ?? 0;
}

function modeString(mode: number): string {
  return '0' + (mode & 0o7777).toString(8).padStart(3, '0');
}

/** Throws UNSAFE_FILE unless `st` is owned by us and has no group/other permission bits. */
export function checkPrivate(st: Stats, what: string, path: string): void {
  const uid = ourUid();
  if (st.uid !== uid) {
    throw new VfbError(
      'UNSAFE_FILE',
      `${what} ${path} is owned by uid ${st.uid}, not by uid ${uid} that vfbroker runs as`,
      {
        details: { path, uid: st.uid },
      },
    );
  }
  if ((st.mode & 0o077) !== 0) {
    const fix = st.isDirectory() ? 'chmod 700' : 'chmod 600';
    throw new VfbError(
      'UNSAFE_FILE',
      `${what} ${path} is open to group or others (mode ${modeString(st.mode)}); run ${fix} ${path}`,
      {
        details: { path, mode: modeString(st.mode) },
      },
    );
  }
}

/** Creates the directory (0700) if missing, then checks it is a real directory, ours and private. */
export async function ensurePrivateDirectory(path: string, what: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw fsError(err, what, path);
  }
  await checkPrivateDirectory(path, what);
}

export async function checkPrivateDirectory(path: string, what: string): Promise<void> {
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    throw fsError(err, what, path);
  }
  if (!st.isDirectory()) {
    throw new VfbError(
      'UNSAFE_FILE',
      `${what} ${path} is not a directory${st.isSymbolicLink() ? ' (a symbolic link)' : ''}`,
      {
        details: { path },
      },
    );
  }
  checkPrivate(st, what, path);
}

/**
 * Reads a private regular file of at most `maxBytes`. NOT_FOUND when it does not exist; UNSAFE_FILE
 * when it is a symlink, not a regular file, someone else's or readable by others.
 */
export async function readPrivateFile(path: string, what: string, maxBytes: number): Promise<Buffer> {
  let handle;
  try {
    // O_NONBLOCK: opening a FIFO planted in place of the file must not hang the broker.
    handle = await open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    throw fsError(err, what, path);
  }
  try {
    const st = await handle.stat();
    if (!st.isFile())
      throw new VfbError('UNSAFE_FILE', `${what} ${path} is not a regular file`, { details: { path } });
    checkPrivate(st, what, path);
    if (st.size > maxBytes) {
      throw new VfbError('UNSAFE_FILE', `${what} ${path} is larger than ${maxBytes} bytes`, {
        details: { path },
      });
    }
    const buf = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0);
    if (bytesRead > maxBytes) {
      throw new VfbError('UNSAFE_FILE', `${what} ${path} is larger than ${maxBytes} bytes`, {
        details: { path },
      });
    }
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** fsync a directory, so that a rename or link in it survives a power cut. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, O_RDONLY | O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** A file-system error as a VfbError naming the file; only the errno is kept, never the error object. */
export function fsError(err: unknown, what: string, path: string): VfbError {
  if (err instanceof VfbError) return err;
  const code = (err as { code?: unknown }).code;
  const errno = typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : 'EIO';
  const details = { path, errno };
  switch (errno) {
    case 'ENOENT':
      return new VfbError('NOT_FOUND', `${what} ${path} does not exist`, { details });
    case 'ELOOP':
      return new VfbError(
        'UNSAFE_FILE',
        `${what} ${path} is a symbolic link; point the config at the file itself`,
        {
          details,
        },
      );
    case 'EACCES':
    case 'EPERM':
      return new VfbError('DENIED', `${what} ${path} cannot be accessed (${errno}); run vfbroker as root`, {
        details,
      });
    default:
      return new VfbError('UNAVAILABLE', `${what} ${path} could not be accessed (${errno})`, { details });
  }
}
