import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const moduleUrl = new URL('../../../src/broker/pretenuring.js', import.meta.url).href;

/**
 * A process that builds up objects of one literal and keeps them all, as a burst of calls keeps
 * what it allocated alive, and asks V8 (through %InYoungGeneration) where each fresh object of that
 * literal lands. Prints "old after N" once one lands in the old generation, "young" if none does.
 */
const probe = `
const { disablePretenuring } = await import(${JSON.stringify(moduleUrl)});
if (process.argv[1] === 'disabled') disablePretenuring();
const make = (n) => ({ n, vf: '0000:3b:10.2' });
const kept = [];
let answer = 'young';
for (let n = 0; n < 2_000_000 && answer === 'young'; n += 10_000) {
  for (let i = 0; i < 10_000; i++) kept.push(make(i));
  if (!%InYoungGeneration(make(-1))) answer = 'old after ' + n;
}
process.stdout.write(answer);
`;

async function whereFreshObjectsLand(mode: 'default' | 'disabled'): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    ['--allow-natives-syntax', '--input-type=module', '-e', probe, mode],
    { timeout: 60_000 },
  );
  return stdout;
}

describe('disablePretenuring', () => {
  it('V8 as it comes pretenures a literal whose objects all survive (the control)', async () => {
    // If this fails, V8 no longer pretenures this way and the other test proves nothing: see
    // docs/decisions/0009-broker-no-pretenuring.md and rerun `npm run bench:broker`.
    assert.match(await whereFreshObjectsLand('default'), /^old after \d+$/);
  });

  it("keeps that literal's fresh objects in the young generation, where they die cheaply", async () => {
    assert.equal(await whereFreshObjectsLand('disabled'), 'young');
  });
});
