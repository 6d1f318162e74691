/**
 * Runs the hook's code from a V8 code cache, so that a guest start does not pay for compiling it.
 *
 * libvirt starts the hook for every op of every guest, and compiling the bundle is a good part of
 * its start-up (about 5 ms of ~35 ms with 8 VFs on a 2-core host). Node 20 has no compile cache for
 * user code (module.enableCompileCache arrived in 22), so the installed hook carries its code as a
 * string and compiles it with node:vm, handing V8 the bytecode it made on an earlier run.
 *
 * The cache is code that runs as root, so it is trusted only like the hook itself: a regular file,
 * not a link, owned by the hook's user and writable by nobody else. It starts with a line naming the
 * build of the code it was made from: V8 itself checks only the source's length, and would run the
 * bytecode of another build of the same length. Anything else — missing, wrong owner, another build,
 * another node version (V8 rejects it) — and the code is compiled from source, and a fresh cache is
 * written when the run ends. The hook never creates the cache's directory:
 * `vfbroker install` does, so a hook run by hand, by the demo or by the tests leaves nothing behind.
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { Script } from 'node:vm';

/** Where the installed hook keeps its cache; `vfbroker install` creates the directory. */
export const DEFAULT_CODE_CACHE = '/var/cache/vfbroker/qemu-hook.v8';
/** Far above any real cache (~150 kB); a bigger file is not one. */
const MAX_CACHE_BYTES = 16 * 1024 * 1024;

/** The CommonJS scope the code gets, as Node gives a module. */
export interface ModuleScope {
  readonly exports: unknown;
  readonly require: NodeJS.Require;
  readonly module: unknown;
  readonly filename: string;
  readonly dirname: string;
}

/** The code to run: a CommonJS module body, and a name for its build (a hash of it). */
export interface HookCode {
  readonly source: string;
  readonly build: string;
}

/**
 * Compiles the code with the cache at `cacheFile` when it is usable, and runs it. `cacheFile` null:
 * no cache at all.
 */
export function runWithCodeCache(code: HookCode, scope: ModuleScope, cacheFile: string | null): void {
  const header = Buffer.from(`vfbroker qemu hook code cache ${code.build}\n`);
  const cached = cacheFile === null ? undefined : readTrustedCache(cacheFile, header);
  const script = new Script(
    `(function (exports, require, module, __filename, __dirname) {${code.source}\n})`,
    {
      filename: scope.filename,
      ...(cached === undefined ? {} : { cachedData: cached }),
    },
  );
  if (cacheFile !== null && (cached === undefined || script.cachedDataRejected === true)) {
    // At exit, the cache holds the functions this run compiled too, not only the top level. The
    // hook ends with process.exit, which still emits 'exit'.
    process.once('exit', () => writeCache(cacheFile, Buffer.concat([header, script.createCachedData()])));
  }
  const main = script.runInThisContext() as (...args: unknown[]) => void;
  main(scope.exports, scope.require, scope.module, scope.filename, scope.dirname);
}

function readTrustedCache(file: string, header: Buffer): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const stat = fstatSync(fd);
    const trusted =
      stat.isFile() &&
      stat.uid === process.geteuid?.() &&
      (stat.mode & 0o022) === 0 &&
      stat.size > header.length &&
      stat.size <= MAX_CACHE_BYTES;
    if (!trusted) return undefined;
    const data = Buffer.allocUnsafe(stat.size);
    let n = 0;
    while (n < data.length) {
      const got = readSync(fd, data, n, data.length - n, null);
      if (got === 0) return undefined;
      n += got;
    }
    return data.subarray(0, header.length).equals(header) ? data.subarray(header.length) : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Atomically, so a concurrent hook reads the old cache or the new one, never half of one. */
function writeCache(file: string, data: Buffer): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, data, { mode: 0o600, flag: 'wx' });
    renameSync(temporary, file);
  } catch {
    // No directory (not installed), read-only, full: the next run compiles from source again.
    try {
      rmSync(temporary, { force: true });
    } catch {
      // Nothing more a hook at exit can do about it.
    }
  }
}
