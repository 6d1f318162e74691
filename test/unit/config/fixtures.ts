/**
 * Paths to the repository's files from a compiled test, wherever the build put it (dist/ or a
 * private .build/<name>/): the repository root is the nearest directory above with package.json.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root above the test');
    dir = up;
  }
  return dir;
}

export const REPO_ROOT = findRepoRoot();
export const FIXTURES = join(REPO_ROOT, 'test/fixtures/config');
/** A root directory whose etc/passwd and etc/group hold dpdk, ran and vfio-users. */
export const ACCOUNTS_ROOT = join(FIXTURES, 'accounts');
