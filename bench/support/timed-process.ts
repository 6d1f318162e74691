/**
 * Runs a program to completion and times it from spawn to the close of its stdio — what libvirt
 * waits for when it runs a hook. stdout is discarded; stderr is kept for the bench's own checks.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  constants,
  createWriteStream,
  mkdtempSync,
  openSync,
  rmdirSync,
  unlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { VfbError } from '../../src/errors.js';

export interface TimedRun {
  readonly ms: number;
  readonly exitCode: number;
  readonly stderr: string;
}

/** A run that takes this long is a hung program, not a slow one. */
const KILL_AFTER_MS = 30_000;

/**
 * A pipe, as libvirt gives a hook its stdin (virCommand makes one with pipe2) — not the socket pair
 * Node's child_process makes for `stdio: 'pipe'`, which would time a different, slower path of the
 * hook. Node cannot call pipe(2), but a FIFO is a pipe with a name: opened at both ends and then
 * unlinked, it is indistinguishable from one. The read end is opened blocking, as a child gets it.
 */
function pipeEnds(): { readFd: number; writeFd: number } {
  const dir = mkdtempSync(join(tmpdir(), 'vfb-fifo-'));
  const path = join(dir, 'stdin');
  try {
    execFileSync('mkfifo', ['-m', '600', path]);
    // Opening a FIFO blocks until the other end is open, unless the reader is non-blocking: that
    // first reader only lets the writer open, then gives way to the blocking one the child gets.
    const opener = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(path, constants.O_WRONLY);
    const readFd = openSync(path, constants.O_RDONLY);
    closeSync(opener);
    return { readFd, writeFd };
  } finally {
    unlinkSync(path);
    rmdirSync(dir);
  }
}

export function timedRun(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  stdin: string | null,
): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const pipe = stdin === null ? null : pipeEnds();
    const start = performance.now();
    const child = spawn(command, args, {
      env,
      stdio: [pipe === null ? 'ignore' : pipe.readFd, 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new VfbError('UNAVAILABLE', `cannot run ${command}: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      const ms = performance.now() - start;
      clearTimeout(timer);
      if (code === null) {
        reject(new VfbError('TIMEOUT', `${command} was killed by ${signal ?? 'a signal'}`));
        return;
      }
      resolve({ ms, exitCode: code, stderr: stderr.trimEnd() });
    });
    if (pipe !== null && stdin !== null) {
      closeSync(pipe.readFd);
      const input = createWriteStream('', { fd: pipe.writeFd });
      // EPIPE if it exits before reading all of stdin; its exit status tells the story.
      input.on('error', () => undefined);
      input.end(stdin);
    }
  });
}
