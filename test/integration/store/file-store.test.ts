/**
 * FileStore: the TokenStore contract, plus what only a directory on disk can get wrong — modes,
 * owners, symlinks, torn or garbage files, temp files left by a crash, and writers in other processes.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import {
  chmod,
  chown,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { FileStore } from '../../../src/broker/store/file-store.js';
import type { PfTokens } from '../../../src/broker/store/token-store.js';
import type { ErrorCode, VfbError } from '../../../src/errors.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import {
  defineTokenStoreContract,
  expectStoreError,
  type TokenStoreFixture,
} from '../../contract/token-store.contract.js';
import { assertNoSecretsIn, captureLogs } from '../../support/log-capture.js';

const run = promisify(execFile);
const REVISION_FILE = /^(.+)\.rev(\d+)\.(json|removed)$/;

async function latestFile(dir: string, pf: string): Promise<{ name: string; revision: number } | null> {
  let best: { name: string; revision: number } | null = null;
  for (const name of await readdir(dir)) {
    const m = REVISION_FILE.exec(name);
    if (m?.[1] === pf && (!best || Number(m[2]) > best.revision)) best = { name, revision: Number(m[2]) };
  }
  return best;
}

/** The directory's record files, without the lock file and temp files. */
async function recordFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => !n.startsWith('.'));
}

async function fileFixture(): Promise<TokenStoreFixture> {
  const root = await mkdtemp(join(tmpdir(), 'vfb-filestore-'));
  const dir = join(root, 'tokens');
  return {
    open: (logger) => FileStore.open({ directory: dir }, logger),
    async plant(pf, data) {
      const revision = ((await latestFile(dir, pf))?.revision ?? 0) + 1;
      await writeFile(join(dir, `${pf}.rev${revision}.json`), JSON.stringify(data), { mode: 0o600 });
    },
    async raw(pf) {
      const latest = await latestFile(dir, pf);
      return latest ? (JSON.parse(await readFile(join(dir, latest.name), 'utf8')) as unknown) : null;
    },
    secrets: [],
    dispose: () => rm(root, { recursive: true, force: true }),
  };
}

defineTokenStoreContract('FileStore', fileFixture);

describe('FileStore on disk', () => {
  let root: string;
  const pf = parsePciAddress('0000:3b:00.0');
  const logs = captureLogs();
  /** Every token these tests created: none may appear in a log line or an error. */
  const tokens: string[] = [];
  const rejection = (p: Promise<unknown>, code: ErrorCode): Promise<VfbError> =>
    expectStoreError(p, code, tokens);
  const open = (directory: string): Promise<FileStore> => FileStore.open({ directory }, logs.logger);
  const create = async (store: FileStore): Promise<PfTokens> => {
    const created = await store.create(pf);
    tokens.push(created.active.token);
    return created;
  };

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'vfb-filestore-'));
  });
  afterEach(() => logs.assertNoSecrets(tokens));
  after(() => rm(root, { recursive: true, force: true }));

  const newDir = (name: string): string => join(root, name);

  it('creates a missing directory with mode 0700 and writes records 0600', async () => {
    const dir = newDir('fresh/tokens');
    const store = await open(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    await create(store);
    const latest = await latestFile(dir, pf);
    assert.ok(latest);
    assert.equal((await stat(join(dir, latest.name))).mode & 0o777, 0o600);
    await store.probe();
  });

  for (const mode of [0o755, 0o750, 0o701]) {
    it(`refuses a directory with mode 0${mode.toString(8)}`, async () => {
      const dir = newDir(`mode-${mode.toString(8)}`);
      await mkdir(dir);
      await chmod(dir, mode);
      const err = await rejection(open(dir), 'UNSAFE_FILE');
      assert.equal(
        err.message,
        `token store directory ${dir} is open to group or others (mode 0${mode.toString(8)}); run chmod 700 ${dir}`,
      );
    });
  }

  it('refuses a directory owned by another user', async () => {
    let dir: string;
    if (process.geteuid?.() === 0) {
      dir = newDir('foreign');
      await mkdir(dir, { mode: 0o700 });
      await chown(dir, 65534, 65534);
    } else {
      dir = '/'; // owned by root, which we are not
    }
    const err = await rejection(open(dir), 'UNSAFE_FILE');
    assert.match(
      err.message,
      new RegExp(`^token store directory ${dir} is owned by uid \\d+, not by uid \\d+`),
    );
  });

  it('refuses a symbolic link in place of the directory', async () => {
    const real = newDir('real');
    await mkdir(real, { mode: 0o700 });
    const link = newDir('link');
    await symlink(real, link);
    const err = await rejection(open(link), 'UNSAFE_FILE');
    assert.equal(err.message, `token store directory ${link} is not a directory (a symbolic link)`);
  });

  it('refuses a record file readable by others, without touching it', async () => {
    const dir = newDir('loose-file');
    const store = await open(dir);
    const created = await create(store);
    const file = join(dir, `${pf}.rev${created.revision}.json`);
    await chmod(file, 0o644);
    const err = await rejection(store.read(pf), 'UNSAFE_FILE');
    assert.equal(
      err.message,
      `token record ${file} is open to group or others (mode 0644); run chmod 600 ${file}`,
    );
    await rejection(store.writePending(pf, created.revision), 'UNSAFE_FILE');
    assert.deepEqual(await recordFiles(dir), [`${pf}.rev${created.revision}.json`]);
  });

  it('reports a garbage file as STORE_CORRUPT and overwrites nothing', async () => {
    const dir = newDir('garbage');
    const store = await open(dir);
    await create(store);
    const garbage = '{"schema":1,"active":{"token":"3f0c1d2e-';
    await writeFile(join(dir, `${pf}.rev2.json`), garbage, { mode: 0o600 });
    const err = await rejection(store.read(pf), 'STORE_CORRUPT');
    assert.equal(
      err.message,
      `token record of PF ${pf} at ${join(dir, `${pf}.rev2.json`)} is malformed: not valid JSON`,
    );
    assert.deepEqual(err.details, { pf, revision: 2 });
    await rejection(store.writePending(pf, 2), 'STORE_CORRUPT');
    await rejection(store.create(pf), 'STORE_CORRUPT');
    assert.equal(await readFile(join(dir, `${pf}.rev2.json`), 'utf8'), garbage);
    await store.remove(pf, 2);
    assert.equal((await store.create(pf)).active.generation, 1);
  });

  it('keeps one file per PF at rest and no token on disk once a PF is removed', async () => {
    const dir = newDir('at-rest');
    const store = await open(dir);
    let state = await create(store);
    for (let i = 0; i < 3; i++) {
      const pending = await store.writePending(pf, state.revision);
      tokens.push(pending.pending!.token);
      state = await store.promote(pf, {
        revision: pending.revision,
        generation: pending.pending!.generation,
      });
    }
    assert.deepEqual(await recordFiles(dir), [`${pf}.rev${state.revision}.json`]);
    await store.remove(pf, state.revision);
    const names = await recordFiles(dir);
    assert.deepEqual(names, [`${pf}.rev${state.revision + 1}.removed`]);
    assert.equal(await readFile(join(dir, names[0]!), 'utf8'), '');
    assert.deepEqual(await store.list(), []);
    for (const name of await readdir(dir)) {
      assertNoSecretsIn(await readFile(join(dir, name), 'utf8'), tokens, `${name} after removal`);
    }
  });

  it('deletes temp files a crashed writer left behind, but not a writer in progress', async () => {
    const dir = newDir('temps');
    await mkdir(dir, { mode: 0o700 });
    const stale = join(dir, '.tmp-1-aaaaaaaaaaaa');
    const fresh = join(dir, '.tmp-2-bbbbbbbbbbbb');
    await writeFile(stale, '{"token":"left behind"}', { mode: 0o600 });
    await writeFile(fresh, '{"token":"being written"}', { mode: 0o600 });
    const old = new Date(Date.now() - 3600_000);
    await utimes(stale, old, old);
    await open(dir);
    assert.deepEqual((await readdir(dir)).sort(), ['.tmp-2-bbbbbbbbbbbb']);
    assert.ok(logs.records().some((r) => r['path'] === stale));
  });

  it('loses no update when several processes rotate the same PF at once', async () => {
    const dir = newDir('processes');
    const store = await open(dir);
    await create(store);
    const fileStoreModule = new URL('../../../src/broker/store/file-store.js', import.meta.url).href;
    const logModule = new URL('../../../src/log.js', import.meta.url).href;
    // Each worker rotates until it has won `rounds` times, retrying whenever another worker got there
    // first, and reports the generation of every pending write it was told succeeded.
    const worker = `
      const { FileStore } = await import(${JSON.stringify(fileStoreModule)});
      const { createLogger } = await import(${JSON.stringify(logModule)});
      const store = await FileStore.open({ directory: ${JSON.stringify(dir)} }, createLogger({ level: 'silent' }));
      const generations = [];
      while (generations.length < 5) {
        try {
          const s = await store.read(${JSON.stringify(pf)});
          const p = await store.writePending(s.pf, s.revision);
          generations.push(p.pending.generation);
          await store.abandonPending(s.pf, { revision: p.revision, generation: p.pending.generation });
        } catch (err) {
          if (err.code !== 'CONFLICT' && err.code !== 'BUSY') throw err;
        }
      }
      process.stdout.write(JSON.stringify(generations));
    `;
    const workers = 4;
    const outputs = await Promise.all(
      Array.from({ length: workers }, () => run(process.execPath, ['--input-type=module', '-e', worker])),
    );
    // A lost update shows as a generation handed to two writers, or an abandon that failed after a
    // successful write (the worker would then loop and report more than five).
    const generations = outputs.flatMap((o) => JSON.parse(o.stdout) as number[]).sort((a, b) => a - b);
    assert.deepEqual(
      generations,
      Array.from({ length: workers * 5 }, (_, i) => i + 2),
    );
    const state = await store.read(pf);
    const next = await store.writePending(pf, state.revision);
    assert.equal(next.pending?.generation, 2 + workers * 5);
    assert.deepEqual(await recordFiles(dir), [`${pf}.rev${next.revision}.json`]);
  });
});
