/**
 * One demo at a time on a machine. Two demos simulate the same cards at the same addresses, and the
 * intel-fec plugin finds pf_bb_config's daemon by its command line across the whole machine (as it
 * must on a real host), so a second demo's broker would take the first one's daemon for its own.
 * The lock is a file in the temporary directory naming the workspace that holds it; it is free
 * again once that workspace is gone, which is what every clean-up path ends with.
 */
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VfbError } from '../errors.js';
import { errnoOf } from '../state-files.js';

const LOCK = join(tmpdir(), 'vfbroker-demo.lock');
const ATTEMPTS = 3;

export async function lockDemo(root: string): Promise<void> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    try {
      await writeFile(LOCK, root, { flag: 'wx', mode: 0o644 });
      return;
    } catch (err) {
      if (errnoOf(err) !== 'EEXIST') throw lockError(err);
    }
    const holder = await readFile(LOCK, 'utf8').catch(() => '');
    if (holder !== '' && existsSync(holder)) {
      throw new VfbError('BUSY', `another vfbroker demo is running in ${holder}`, {
        hint: `both would simulate the same cards; wait for it to end, or stop it with: vfbroker demo --stop ${holder}`,
      });
    }
    // Its workspace is gone: a demo that ended without taking its lock away (killed with SIGKILL).
    await unlink(LOCK).catch(() => undefined);
  }
  throw new VfbError('BUSY', `${LOCK} keeps changing: other demos are starting right now`, {
    hint: 'start one demo at a time',
  });
}

/** Gives the lock back if `root` holds it; synchronous, so an exit handler can call it. */
export function unlockDemo(root: string): void {
  try {
    if (readFileSync(LOCK, 'utf8') === root) unlinkSync(LOCK);
  } catch {
    // No lock, or not ours: nothing to give back.
  }
}

function lockError(err: unknown): VfbError {
  return new VfbError('UNAVAILABLE', `cannot create ${LOCK} (${errnoOf(err) ?? 'error'})`, {
    cause: err,
    hint: 'check that the temporary directory is writable',
  });
}
