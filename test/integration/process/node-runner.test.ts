/**
 * The real runner against real (short-lived) node child processes: exit statuses, stdin, line
 * events, timeouts, kill deadlines, the package named for a missing command, and secrets kept out
 * of output, errors and logs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { secret } from '../../../src/process/argv.js';
import { createNodeRunner } from '../../../src/process/node-runner.js';
import { requireSuccess, type ProcessRunner } from '../../../src/process/runner.js';
import { waitForLine } from '../../../src/process/wait-line.js';
import { captureLogs } from '../../support/log-capture.js';

const NODE = process.execPath;
const TOKEN = '6b1e1c9a-3f0d-4c61-9a57-0d2b8f4e7c13';

async function rejectsWith(promise: Promise<unknown>, code: string): Promise<VfbError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof VfbError, `expected a VfbError, got ${String(err)}`);
    assert.equal(err.code, code);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('node runner: one-shot commands', () => {
  const logs = captureLogs('debug');
  const runner = createNodeRunner({ logger: logs.logger });
  let emptyDir = '';
  before(async () => {
    emptyDir = await mkdtemp(path.join(tmpdir(), 'vfb-runner-'));
  });
  after(async () => {
    await rm(emptyDir, { recursive: true, force: true });
  });

  it('returns the exit status and both outputs', async () => {
    const result = await runner.run(
      [NODE, '-e', 'process.stdout.write("out\\n"); process.stderr.write("err"); process.exit(3)'],
      { timeoutMs: 10_000 },
    );
    assert.deepEqual(result, { code: 3, signal: null, stdout: 'out\n', stderr: 'err' });
  });

  it('feeds input on stdin', async () => {
    const script =
      'let s=""; process.stdin.on("data", d => s += d).on("end", () => process.stdout.write(s.toUpperCase()))';
    const result = await runner.run([NODE, '-e', script], { timeoutMs: 10_000, input: 'hello' });
    assert.equal(result.stdout, 'HELLO');
  });

  it('finds a bare command name in the search path', async () => {
    const scoped = createNodeRunner({
      logger: logs.logger,
      searchPath: `relative/dir:${path.dirname(NODE)}`,
    });
    const result = await scoped.run([path.basename(NODE), '-e', 'process.exit(0)'], { timeoutMs: 10_000 });
    assert.equal(result.code, 0);
  });

  it('names the Debian package of a missing command', async () => {
    const scoped = createNodeRunner({ logger: logs.logger, searchPath: emptyDir });
    const mst = await rejectsWith(
      scoped.run(['mstconfig', '-d', '0000:3b:00.0', 'q'], { timeoutMs: 1000 }),
      'NOT_FOUND',
    );
    assert.equal(
      mst.message,
      `command mstconfig not found (searched ${emptyDir}): install the Debian package mstflint`,
    );
    const ip = await rejectsWith(scoped.run(['ip', 'link'], { timeoutMs: 1000 }), 'NOT_FOUND');
    assert.match(ip.message, /install the Debian package iproute2$/);
    const fec = await rejectsWith(scoped.spawn(['pf_bb_config', 'ACC100']), 'NOT_FOUND');
    assert.match(fec.message, /build it from https:\/\/github\.com\/intel\/pf-bb-config/);
    await rejectsWith(runner.run(['/nonexistent/dpdk-testpmd'], { timeoutMs: 1000 }), 'NOT_FOUND');
  });

  it('refuses a relative command path', async () => {
    const err = await rejectsWith(runner.run(['./app'], { timeoutMs: 1000 }), 'INVALID_ARGUMENT');
    assert.equal(err.message, 'command "./app" must be an absolute path or a bare name');
  });

  it('kills a command that overruns its timeout', async () => {
    const err = await rejectsWith(
      runner.run([NODE, '-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 200 }),
      'TIMEOUT',
    );
    assert.match(err.message, /did not finish within 200 ms and was killed$/);
  });

  it('keeps a secret argument out of output, errors and logs', async () => {
    const argv = [
      NODE,
      '-e',
      'console.log(process.argv.at(-1)); console.error("bad " + process.argv.at(-1)); process.exit(2)',
      '--',
      secret(TOKEN, '--vfio-vf-token='),
    ] as const;
    const result = await runner.run(argv, { timeoutMs: 10_000 });
    assert.equal(result.stdout, '--vfio-vf-token=<redacted>\n');
    const err = (() => {
      try {
        requireSuccess(argv, result);
      } catch (e) {
        return e as VfbError;
      }
      assert.fail('expected a failure');
    })();
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(
      err.message,
      /--vfio-vf-token=<redacted>` exited with status 2: bad --vfio-vf-token=<redacted>$/,
    );
    const everything = [
      err.message,
      JSON.stringify(err.details),
      err.hint,
      result.stdout,
      result.stderr,
      ...logs.lines,
    ].join('\n');
    assert.ok(!everything.includes(TOKEN));
    logs.assertNoSecrets([TOKEN]);
    assert.ok(
      logs.lines.some((l) => l.includes('<redacted>')),
      'the command was logged',
    );
  });
});

describe('node runner: supervised processes', () => {
  const logs = captureLogs('debug');
  const runner: ProcessRunner = createNodeRunner({ logger: logs.logger });
  const ECHO =
    'require("readline").createInterface({ input: process.stdin }).on("line", l => console.log("echo:" + l)); console.log("ready")';

  it('answers stdin with stdout lines, in order, and exits when its input closes', async () => {
    const proc = await runner.spawn([NODE, '-e', ECHO]);
    const lines: string[] = [];
    proc.on('stdout', (l) => lines.push(l));
    await waitForLine(proc, (l) => l === 'ready', 10_000, 'ready');
    await proc.write('one\n');
    await proc.write('two\n');
    await waitForLine(proc, (l) => l === 'echo:two', 10_000, 'the second echo');
    proc.closeInput();
    assert.deepEqual(await proc.exited, { code: 0, signal: null });
    assert.deepEqual(lines, ['ready', 'echo:one', 'echo:two']);
    assert.deepEqual(proc.exitStatus, { code: 0, signal: null });
    await rejectsWith(proc.write('three\n'), 'UNAVAILABLE');
  });

  it('reports a crash through the exit event', async () => {
    const proc = await runner.spawn([NODE, '-e', 'console.log("up"); setTimeout(() => process.exit(7), 10)']);
    const exit = await new Promise((resolve) => proc.on('exit', resolve));
    assert.deepEqual(exit, { code: 7, signal: null });
  });

  it('kill sends SIGTERM, and SIGKILL to a process that ignores it', async () => {
    const polite = await runner.spawn([NODE, '-e', 'console.log("ready"); setInterval(() => {}, 1000)']);
    await waitForLine(polite, (l) => l === 'ready', 10_000, 'ready');
    assert.deepEqual(await polite.kill(5_000), { code: null, signal: 'SIGTERM' });

    const stubborn = await runner.spawn([
      NODE,
      '-e',
      'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)',
    ]);
    await waitForLine(stubborn, (l) => l === 'ready', 10_000, 'ready');
    assert.deepEqual(await stubborn.kill(200), { code: null, signal: 'SIGKILL' });
  });

  it('waitForLine fails when the process exits first', async () => {
    const proc = await runner.spawn([NODE, '-e', 'console.log("nope"); process.exit(4)']);
    const err = await rejectsWith(
      waitForLine(proc, (l) => l === 'ready', 10_000, 'its ready line'),
      'UNAVAILABLE',
    );
    assert.match(err.message, /exited \(status 4\) before its ready line$/);
  });

  it('signals processes by pid and says when there is none', async () => {
    const proc = await runner.spawn([NODE, '-e', 'console.log("ready"); setInterval(() => {}, 1000)']);
    await waitForLine(proc, (l) => l === 'ready', 10_000, 'ready');
    assert.equal(runner.signal(proc.pid, 0), true);
    assert.equal(runner.signal(proc.pid, 'SIGTERM'), true);
    await proc.exited;
    assert.equal(runner.signal(proc.pid, 0), false);
    assert.throws(
      () => runner.signal(1, 'SIGTERM'),
      (err) => err instanceof VfbError && err.code === 'INVALID_ARGUMENT',
    );
  });
});
