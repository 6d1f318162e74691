/** Waiting for a supervised process to say something (a ready line), bounded in time. */
import { VfbError } from '../errors.js';
import type { ProcessExit, SupervisedProcess } from './runner.js';

/**
 * Resolves with the first stdout line that `matches`. Fails with TIMEOUT after `timeoutMs`, and
 * with UNAVAILABLE when the process exits first. Call it right after spawn so no line is missed.
 */
export function waitForLine(
  proc: SupervisedProcess,
  matches: (line: string) => boolean,
  timeoutMs: number,
  what: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      proc.off('stdout', onLine);
      proc.off('exit', onExit);
    };
    const onLine = (line: string): void => {
      if (!matches(line)) return;
      done();
      resolve(line);
    };
    const onExit = (exit: ProcessExit): void => {
      done();
      reject(
        new VfbError('UNAVAILABLE', `\`${proc.command}\` exited (${describeExit(exit)}) before ${what}`),
      );
    };
    const timer = setTimeout(() => {
      done();
      reject(new VfbError('TIMEOUT', `\`${proc.command}\` did not report ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    proc.on('stdout', onLine);
    proc.on('exit', onExit);
    if (proc.exitStatus !== null) onExit(proc.exitStatus);
  });
}

export function describeExit(exit: ProcessExit): string {
  return exit.code === null ? `killed by ${exit.signal ?? 'a signal'}` : `status ${exit.code}`;
}
