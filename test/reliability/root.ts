/**
 * What some reliability tests need from the machine, as skip reasons (false when available).
 *
 * The broker answers PrepareGuest, GuestStarted, ReleaseGuest, Rotate and the PF calls only for
 * uid 0 (src/broker/broker.ts, requireRoot), so tests that run hooks or rotations against a real
 * `vfbroker serve` need the test itself to run as root. A full or read-only state directory needs a
 * tmpfs of its own, so root and a working mount(8) too.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT_ONLY: string | false =
  process.getuid?.() === 0
    ? false
    : 'needs root: the broker answers PrepareGuest and Rotate for uid 0 only (run as root, e.g. in CI’s root job)';

function tmpfsMountable(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'vfb-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Tries a mount once (as root only), so call it from the tests that need it, not at import. */
export function tmpfsUnavailable(): string | false {
  return (
    ROOT_ONLY || (tmpfsMountable() ? false : 'needs mount(8) to mount a small tmpfs (not permitted here)')
  );
}
