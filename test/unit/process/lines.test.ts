import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter } from '../../../src/process/lines.js';

function split(chunks: (string | Buffer)[], max = 100): string[] {
  const lines: string[] = [];
  const splitter = new LineSplitter(max, (l) => lines.push(l));
  for (const c of chunks) splitter.push(typeof c === 'string' ? Buffer.from(c) : c);
  splitter.end();
  return lines;
}

describe('LineSplitter', () => {
  it('joins chunks into lines and emits the unterminated rest at the end', () => {
    assert.deepEqual(split(['a', 'b\nc', '\r\n', 'd']), ['ab', 'c', 'd']);
  });

  it('keeps a multi-byte character that spans two chunks', () => {
    const bytes = Buffer.from('é\n');
    assert.deepEqual(split([bytes.subarray(0, 1), bytes.subarray(1)]), ['é']);
  });

  it('cuts a runaway line at the cap and drops the rest of it', () => {
    assert.deepEqual(split(['x'.repeat(30), 'y'.repeat(30), 'z\nnext\n'], 40), [
      'x'.repeat(30) + 'y'.repeat(10),
      'next',
    ]);
  });
});
