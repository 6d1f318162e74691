/**
 * Runs a program to completion and times it from spawn to the close of its stdio — what libvirt
 * waits for when it runs a hook. stdout is discarded; stderr is kept for the bench's own checks.
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { VfbError } from '../../src/errors.js';

export interface TimedRun {
  readonly ms: number;
  readonly exitCode: number;
  readonly stderr: string;
}

/** A run that takes this long is a hung program, not a slow one. */
const KILL_AFTER_MS = 30_000;

export function timedRun(
  command: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  stdin: string | null,
): Promise<TimedRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(command, args, {
      env,
      stdio: [stdin === null ? 'ignore' : 'pipe', 'ignore', 'pipe'],
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
    if (stdin !== null && child.stdin) {
      // EPIPE if it exits before reading all of stdin; its exit status tells the story.
      child.stdin.on('error', () => undefined);
      child.stdin.end(stdin);
    }
  });
}
