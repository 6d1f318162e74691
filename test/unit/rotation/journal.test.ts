/**
 * The rotation journal on disk: one owner-only file per PF, written whole, read back strictly,
 * gone when the rotation is over; a file that cannot be trusted stops the load with its name.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { RotationJournal, type JournalEntry } from '../../../src/broker/rotation/journal.js';
import { parsePciAddress } from '../../../src/pci/address.js';

const PF = parsePciAddress('0000:3b:00.0');
const OTHER = parsePciAddress('0000:af:00.0');
const ENTRY: JournalEntry = {
  pf: PF,
  mode: 'drain',
  step: 'draining',
  from: 4,
  generation: 5,
  startedAt: '2030-01-01T00:00:00.000Z',
  deadline: '2030-01-01T00:10:00.000Z',
};

let root: string;
let dir: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'vfb-journal-'));
  dir = join(root, 'rotation');
});
afterEach(() => rm(root, { recursive: true, force: true }));

describe('RotationJournal', () => {
  it('keeps an entry in a 0600 file of a 0700 directory, without any token, and reads it back', async () => {
    const journal = new RotationJournal(dir);
    await journal.write(ENTRY);
    assert.deepEqual(journal.get(PF), ENTRY);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const file = join(dir, `${PF}.json`);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { format: 1, ...ENTRY });

    const reloaded = new RotationJournal(dir);
    assert.deepEqual(await reloaded.load(), [ENTRY]);
    assert.deepEqual(reloaded.get(PF), ENTRY);
  });

  it('forgets an entry on remove, on disk too; removing twice is fine', async () => {
    const journal = new RotationJournal(dir);
    await journal.write(ENTRY);
    await journal.write({ ...ENTRY, pf: OTHER });
    await journal.remove(PF);
    await journal.remove(PF);
    assert.equal(journal.get(PF), undefined);
    assert.deepEqual(await readdir(dir), [`${OTHER}.json`]);
    assert.deepEqual(
      (await new RotationJournal(dir).load()).map((e) => e.pf),
      [OTHER],
    );
  });

  it('loads an empty or missing directory as no entries, and skips temp files a crash left', async () => {
    assert.deepEqual(await new RotationJournal(dir).load(), []);
    await writeFile(join(dir, `.${PF}.json.0123456789ab.tmp`), '{"torn":');
    assert.deepEqual(await new RotationJournal(dir).load(), []);
  });

  for (const [name, content] of [
    ['not JSON', '{"format":1,'],
    ['an unknown step', JSON.stringify({ format: 1, ...ENTRY, step: 'guessing' })],
    ['an extra field (a token has no place here)', JSON.stringify({ format: 1, ...ENTRY, token: 'x' })],
    ['another PF than its name', JSON.stringify({ format: 1, ...ENTRY, pf: OTHER })],
  ] as const) {
    it(`refuses a file with ${name}, naming it`, async () => {
      await new RotationJournal(dir).load();
      const file = join(dir, `${PF}.json`);
      await writeFile(file, content, { mode: 0o600 });
      await assert.rejects(new RotationJournal(dir).load(), (err: unknown) => {
        assert.ok(err instanceof Error && 'code' in err);
        assert.equal(err.code, 'STORE_CORRUPT');
        assert.equal(
          err.message,
          name === 'not JSON' ? `${file} is not valid JSON` : `rotation journal ${file} is malformed`,
        );
        return true;
      });
    });
  }

  it('refuses a journal directory others can read', async () => {
    await new RotationJournal(dir).load();
    await chmod(dir, 0o755);
    await assert.rejects(new RotationJournal(dir).write(ENTRY), { code: 'UNSAFE_FILE' });
  });
});
