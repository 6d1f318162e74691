import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { readCapped } from '../../src/capped-read.js';

describe('readCapped', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfb-capped-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const read = async (content: string, statSize: number, maxBytes: number) => {
    const file = join(dir, 'f');
    await writeFile(file, content);
    const handle = await open(file, 'r');
    try {
      return (await readCapped(handle, statSize, maxBytes)).toString();
    } finally {
      await handle.close();
    }
  };

  it('reads a file under the cap whole', async () => {
    assert.equal(await read('rules: []\n', 10, 100), 'rules: []\n');
    assert.equal(await read('', 0, 100), '');
  });

  it('reads one byte past the cap, whatever fstat said, so the caller can refuse the file', async () => {
    assert.equal(await read('x'.repeat(50), 50, 10), 'x'.repeat(11));
    assert.equal(await read('x'.repeat(50), 5, 10), 'x'.repeat(11));
  });

  it('reads to the end a file that grew after fstat, instead of stopping at its old size', async () => {
    const grown = 'a: 1\n'.repeat(40);
    assert.equal(await read(grown, 10, 1000), grown);
    assert.equal(await read(grown, 0, 1000), grown);
  });
});
