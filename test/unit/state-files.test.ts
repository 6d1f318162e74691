import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VfbError } from '../../src/errors.js';
import { readJsonFile } from '../../src/state-files.js';

describe('readJsonFile', () => {
  let dir: string;
  before(async () => (dir = await mkdtemp(join(tmpdir(), 'vfb-state-files-'))));
  after(() => rm(dir, { recursive: true, force: true }));

  const refusal = async (path: string, maxBytes?: number): Promise<VfbError> => {
    const err: unknown = await readJsonFile(path, maxBytes).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof VfbError);
    return err;
  };

  it('reads a file, and a missing one is null', async () => {
    await writeFile(join(dir, 'ok.json'), '{"version":1}');
    assert.deepEqual(await readJsonFile(join(dir, 'ok.json')), { version: 1 });
    assert.equal(await readJsonFile(join(dir, 'missing.json')), null);
  });

  it('refuses a file that is not JSON', async () => {
    await writeFile(join(dir, 'torn.json'), '{"version":');
    const err = await refusal(join(dir, 'torn.json'));
    assert.equal(err.code, 'STORE_CORRUPT');
    assert.equal(err.message, `${join(dir, 'torn.json')} is not valid JSON`);
  });

  it('refuses a file over the cap without reading it, at the exact byte', async () => {
    await writeFile(join(dir, 'big.json'), `"${'x'.repeat(14)}"`); // 16 bytes
    assert.equal(await readJsonFile(join(dir, 'big.json'), 16), 'x'.repeat(14));
    const err = await refusal(join(dir, 'big.json'), 15);
    assert.equal(err.code, 'STORE_CORRUPT');
    assert.equal(err.message, `${join(dir, 'big.json')} is larger than 15 bytes, more than vfbroker writes`);
    assert.equal(err.hint, 'move the file aside; vfbroker recreates it');
  });
});
