/**
 * An exclusive lock on a file, between processes: flock(2), called through koffi (the project's way
 * to reach libc, docs/decisions/0005-vfio-ioctls-through-koffi.md). The kernel drops an flock lock
 * when its holder dies, so a broker killed mid-write never leaves a stale lock behind — the weak
 * spot of O_EXCL lock files. Locks belong to the open file description, so two store instances in
 * one process exclude each other too.
 *
 * Shell equivalent: `flock -n <path> <command>`.
 */
import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import koffi from 'koffi';
import { VfbError } from '../../errors.js';
import { fsError } from '../../private-files.js';

// sys/file.h
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** Holders keep the lock for one read-check-write, milliseconds; waiting longer means something is stuck. */
const WAIT_LIMIT_MS = 5_000;
const FIRST_WAIT_MS = 2;
const MAX_WAIT_MS = 100;

type Flock = (fd: number, operation: number) => number;
let flock: Flock | null = null;

/** Loaded on first use, so importing the store costs no FFI setup. */
function libcFlock(): Flock {
  try {
    flock ??= koffi.load('libc.so.6').func('int flock(int fd, int operation)') as Flock;
  } catch {
    throw new VfbError('UNAVAILABLE', 'cannot call flock(2): libc.so.6 could not be loaded', {
      hint: 'the file store needs glibc; use the Vault store on this host',
    });
  }
  return flock;
}

/** Runs `fn` while holding an exclusive lock on `path` (created 0600 if missing). BUSY if it stays held. */
export async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const { O_RDWR, O_CREAT, O_NOFOLLOW } = fsConstants;
  let handle;
  try {
    // libuv opens every file O_CLOEXEC, so a child process never inherits the lock.
    handle = await open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600);
  } catch (err) {
    throw fsError(err, 'lock file', path);
  }
  try {
    await acquire(handle.fd, path);
    try {
      return await fn();
    } finally {
      libcFlock()(handle.fd, LOCK_UN);
    }
  } finally {
    await handle.close();
  }
}

async function acquire(fd: number, path: string): Promise<void> {
  const lock = libcFlock();
  let waited = 0;
  for (let wait = FIRST_WAIT_MS; ; wait = Math.min(wait * 2, MAX_WAIT_MS)) {
    if (lock(fd, LOCK_EX | LOCK_NB) === 0) return;
    const errno = koffi.errno();
    if (errno !== constants.errno.EWOULDBLOCK && errno !== constants.errno.EINTR) {
      throw new VfbError('UNAVAILABLE', `cannot lock ${path} (errno ${errno})`, { details: { path, errno } });
    }
    if (waited >= WAIT_LIMIT_MS) {
      throw new VfbError('BUSY', `${path} stayed locked by another process for ${WAIT_LIMIT_MS} ms`, {
        details: { path },
        hint: 'another vfbroker process is writing the token store; retry, or find the process with `fuser` on the lock file',
      });
    }
    await sleep(wait);
    waited += wait;
  }
}
