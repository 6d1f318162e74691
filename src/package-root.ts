/**
 * Files of the vfbroker package that the compiler does not copy (the shipped etc/ files, the demo's
 * assets), found from the compiled module's location: the nearest directory above it that holds
 * package.json. That works from dist/ and from any other build directory inside the package.
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VfbError } from './errors.js';

let root: string | undefined;

export function packageFile(path: string): string {
  return join(packageRoot(), path);
}

/** A file of the package as a reader finds it in the repository: `etc/vfbroker/…`. */
export function shownPath(path: string): string {
  const rel = relative(packageRoot(), path);
  return rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

function packageRoot(): string {
  root ??= findRoot(dirname(fileURLToPath(import.meta.url)));
  return root;
}

function findRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) {
      throw new VfbError(
        'NOT_FOUND',
        `no package.json above ${from}: vfbroker's files are not where they belong`,
        {
          hint: 'run vfbroker from its package (npm ci && npm run build)',
        },
      );
    }
  }
}
