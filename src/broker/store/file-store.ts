/**
 * FileStore: the token store in one private directory, for the demo and for hosts without Vault.
 *
 * Layout (docs/decisions/0003-token-store-layout.md): each revision of a PF's record is its own file,
 * `<pf>.rev<N>.json`, mode 0600; a removed PF leaves an empty `<pf>.rev<N>.removed` so that revision
 * numbers are never reused. The highest revision is the record, and older ones are deleted right
 * after each write, so at rest there is one file per PF. Readers take no lock: a revision file
 * appears whole (temp file, fsync, link, directory fsync) or not at all. Writers hold an flock on
 * `.lock` while they check that the latest revision is the one they read and add the next: a
 * compare-and-set between processes, with no lock left behind by a crash.
 *
 * Shell equivalent of a write: `flock .lock sh -c 'cp new .tmp && sync .tmp && ln .tmp <pf>.rev4.json && rm .tmp'`.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { link, open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { VfbError, isVfbError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { isPciAddress, type PciAddress } from '../../pci/address.js';
import { withFileLock } from './file-lock.js';
import {
  checkPrivateDirectory,
  ensurePrivateDirectory,
  fsError,
  readPrivateFile,
  syncDirectory,
} from '../../private-files.js';
import { RecordTokenStore, staleRevision, type RecordBackend, type StoredVersion } from './record-store.js';
import type { TokenRecord } from './token-record.js';

export interface FileStoreOptions {
  readonly directory: string;
}

const WHAT = 'token store directory';
const REVISION_FILE = /^(.+)\.rev([1-9][0-9]{0,14})\.(json|removed)$/;
const TEMP_PREFIX = '.tmp-';
/** One lock for the directory: writes take milliseconds, so per-PF locks would buy nothing. */
const LOCK_FILE = '.lock';
/** A temp file older than this was left by a crashed writer (a write takes milliseconds). */
const STALE_TEMP_MS = 60_000;
/** A record is a few hundred bytes; anything much larger is not ours. */
const MAX_RECORD_BYTES = 64 * 1024;
/** Reads retry when a concurrent writer prunes the revision they were about to open. */
const READ_ATTEMPTS = 5;

interface Revision {
  readonly revision: number;
  readonly removed: boolean;
}

class FileBackend implements RecordBackend {
  readonly description: string;
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
    this.description = `file store ${dir}`;
  }

  where(pf: PciAddress, revision?: number): string {
    return join(this.#dir, `${pf}.rev${revision ?? '*'}.json`);
  }

  async get(pf: PciAddress): Promise<StoredVersion> {
    for (let attempt = 1; ; attempt++) {
      const latest = (await this.#revisions(pf)).at(-1);
      if (!latest) return { kind: 'absent', version: 0 };
      if (latest.removed) return { kind: 'absent', version: latest.revision };
      const file = this.where(pf, latest.revision);
      let raw: Buffer;
      try {
        raw = await readPrivateFile(file, 'token record', MAX_RECORD_BYTES);
      } catch (err) {
        if (isVfbError(err, 'NOT_FOUND') && attempt < READ_ATTEMPTS) continue;
        throw err;
      }
      try {
        return {
          kind: 'present',
          version: latest.revision,
          data: JSON.parse(raw.toString('utf8')) as unknown,
        };
      } catch {
        return { kind: 'unreadable', version: latest.revision, why: 'not valid JSON' };
      }
    }
  }

  put(pf: PciAddress, data: TokenRecord, expected: number): Promise<number> {
    return this.#writeRevision(pf, expected, `${JSON.stringify(data, null, 2)}\n`, 'json');
  }

  async remove(pf: PciAddress, expected: number): Promise<void> {
    // The tombstone stays: if a re-created PF counted revisions from 1 again, a writer holding
    // revision N of the old record would pass the check against revision N of the new one.
    await this.#writeRevision(pf, expected, '', 'removed');
  }

  async keys(): Promise<PciAddress[]> {
    const latest = new Map<PciAddress, Revision>();
    for (const [pf, rev] of await this.#scan()) {
      const seen = latest.get(pf);
      if (!seen || rev.revision > seen.revision) latest.set(pf, rev);
    }
    return [...latest].filter(([, rev]) => !rev.removed).map(([pf]) => pf);
  }

  probe(): Promise<void> {
    return checkPrivateDirectory(this.#dir, WHAT);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** Removes temp files a crashed writer left behind: they may hold a token. */
  async removeStaleTemps(logger: Logger): Promise<void> {
    for (const name of await this.#names()) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const path = join(this.#dir, name);
      try {
        if (Date.now() - (await stat(path)).mtimeMs < STALE_TEMP_MS) continue;
        await unlink(path);
        logger.warn({ path }, 'removed a temp file left by an interrupted token store write');
      } catch (err) {
        if ((err as { code?: unknown }).code !== 'ENOENT') throw fsError(err, 'temp file', path);
      }
    }
  }

  async #writeRevision(
    pf: PciAddress,
    expected: number,
    content: string,
    kind: 'json' | 'removed',
  ): Promise<number> {
    return withFileLock(join(this.#dir, LOCK_FILE), async () => {
      // Under the lock, the latest revision cannot change between this check and the link below.
      const revisions = await this.#revisions(pf);
      if ((revisions.at(-1)?.revision ?? 0) !== expected) throw staleRevision(pf, this.where(pf), expected);
      const revision = expected + 1;
      const target = join(this.#dir, `${pf}.rev${revision}.${kind}`);
      const temp = join(this.#dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(6).toString('hex')}`);
      await this.#writeDurably(temp, content);
      try {
        // link, not rename: it never replaces a file, so even a writer that ignored the lock cannot
        // overwrite a revision.
        await link(temp, target);
      } catch (err) {
        if ((err as { code?: unknown }).code === 'EEXIST') throw staleRevision(pf, this.where(pf), expected);
        throw fsError(err, 'token record', target);
      } finally {
        await unlink(temp).catch(() => undefined);
      }
      await syncDirectory(this.#dir);
      for (const old of revisions) {
        await unlink(join(this.#dir, `${pf}.rev${old.revision}.${old.removed ? 'removed' : 'json'}`)).catch(
          () => undefined,
        );
      }
      return revision;
    });
  }

  async #writeDurably(path: string, content: string): Promise<void> {
    const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
    let handle;
    try {
      handle = await open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    } catch (err) {
      throw fsError(err, 'temp file', path);
    }
    try {
      await handle.writeFile(content, 'utf8');
      await handle.sync();
    } catch (err) {
      await unlink(path).catch(() => undefined);
      throw fsError(err, 'temp file', path);
    } finally {
      await handle.close();
    }
  }

  /** The PF's revisions, lowest first. */
  async #revisions(pf: PciAddress): Promise<Revision[]> {
    return (await this.#scan())
      .filter(([p]) => p === pf)
      .map(([, rev]) => rev)
      .sort((a, b) => a.revision - b.revision);
  }

  async #scan(): Promise<Array<[PciAddress, Revision]>> {
    const out: Array<[PciAddress, Revision]> = [];
    for (const name of await this.#names()) {
      const m = REVISION_FILE.exec(name);
      if (!m || !isPciAddress(m[1])) continue;
      out.push([m[1], { revision: Number(m[2]), removed: m[3] === 'removed' }]);
    }
    return out;
  }

  async #names(): Promise<string[]> {
    try {
      return await readdir(this.#dir);
    } catch (err) {
      throw fsError(err, WHAT, this.#dir);
    }
  }
}

export class FileStore extends RecordTokenStore {
  /** Opens (creating it 0700 if missing) the store directory; UNSAFE_FILE if it is not private to us. */
  static async open(options: FileStoreOptions, logger: Logger): Promise<FileStore> {
    if (options.directory === '') throw new VfbError('CONFIG_INVALID', 'the file store needs a directory');
    await ensurePrivateDirectory(options.directory, WHAT);
    const backend = new FileBackend(options.directory);
    await backend.removeStaleTemps(logger);
    return new FileStore(backend, logger);
  }
}
