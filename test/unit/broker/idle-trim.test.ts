import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const trimUrl = new URL('../../../src/broker/idle-trim.js', import.meta.url).href;
const logUrl = new URL('../../../src/log.js', import.meta.url).href;

/**
 * A process that grows its heap as a burst of calls does (objects that live a little while, so V8
 * grows its young generation), then either idles or keeps its event loop busy for a second with
 * the trim looking every 100 ms, and prints its committed heap before and after, in MB.
 */
const probe = `
import { getHeapStatistics } from 'node:v8';
const { trimWhenIdle } = await import(${JSON.stringify(trimUrl)});
const { createLogger } = await import(${JSON.stringify(logUrl)});
let window = [];
for (let round = 0; round < 200; round++) {
  window.push(Array.from({ length: 20_000 }, (_, i) => ({ i })));
  if (window.length > 20) window.shift();
}
window = null;
const heap = () => Math.round(getHeapStatistics().total_heap_size / 1048576);
const before = heap();
const trim = trimWhenIdle(createLogger({ level: 'silent' }), { everyMs: 100, slackBytes: 1048576 });
const until = Date.now() + 1000;
if (process.argv[1] === 'busy') while (Date.now() < until) await new Promise((resolve) => setImmediate(resolve));
else await new Promise((resolve) => setTimeout(resolve, 1000));
trim.stop();
process.stdout.write(JSON.stringify({ before, after: heap() }));
`;

async function heapAround(mode: 'idle' | 'busy'): Promise<{ before: number; after: number }> {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', probe, mode], {
    timeout: 60_000,
  });
  return JSON.parse(stdout) as { before: number; after: number };
}

describe('trimWhenIdle', () => {
  it('gives back the heap a burst grew, once the event loop has been idle', async () => {
    const { before, after } = await heapAround('idle');
    assert.ok(before >= 40, `the burst grew the heap to ${before} MB`);
    assert.ok(after <= before / 4, `${before} MB → ${after} MB`);
  });

  it('leaves the heap alone while the event loop is busy', async () => {
    const { before, after } = await heapAround('busy');
    assert.ok(after >= before / 2, `${before} MB → ${after} MB`);
  });
});
