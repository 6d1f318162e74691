/**
 * The one interface vfbroker uses to run external programs: one-shot commands (ip, devlink,
 * mstconfig, pf_bb_config) through `run`, long-running PF drivers (a DPDK PF application,
 * vfbroker's PF holder) through `spawn`. The Node implementation is in node-runner.ts; tests use
 * test/support/fake-runner.ts, so plugins never touch node:child_process themselves.
 *
 * Secrets in a command line are marked with `secret()` (argv.ts); every log line and error that
 * an implementation produces shows them as `<redacted>`, and captured output is scrubbed too.
 */
import { VfbError } from '../errors.js';
import type { Argv } from './argv.js';
import { renderArgv } from './argv.js';

export interface RunOptions {
  /** The command is killed (SIGKILL) and the call fails with TIMEOUT after this long. */
  readonly timeoutMs: number;
  /** Written to stdin, which is then closed. Never logged. */
  readonly input?: string;
}

export interface ProcessExit {
  /** Exit status, null when a signal ended the process. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunResult extends ProcessExit {
  /** Captured output (capped in size), secrets of the command line replaced by `<redacted>`. */
  readonly stdout: string;
  readonly stderr: string;
}

export interface SpawnOptions {
  /** Longest stdout/stderr line kept; longer ones are cut, so a runaway child cannot fill memory. */
  readonly maxLineLength?: number;
}

export interface SupervisedProcess {
  readonly pid: number;
  /** The command line as logs show it (secrets redacted). */
  readonly command: string;
  /** null while the process runs. */
  readonly exitStatus: ProcessExit | null;
  /** Settles when the process has exited and its output has been read. Never rejects. */
  readonly exited: Promise<ProcessExit>;
  /** Writes to the process's stdin; fails with UNAVAILABLE once it has exited or stdin is closed. */
  write(data: string): Promise<void>;
  closeInput(): void;
  /**
   * Line events (secrets scrubbed) and the exit event. Attach listeners right after `spawn`
   * resolves, before awaiting anything else, or early lines are missed.
   */
  on(event: 'stdout' | 'stderr', listener: (line: string) => void): this;
  on(event: 'exit', listener: (exit: ProcessExit) => void): this;
  off(event: 'stdout' | 'stderr', listener: (line: string) => void): this;
  off(event: 'exit', listener: (exit: ProcessExit) => void): this;
  /** SIGTERM, then SIGKILL when it is still running after deadlineMs; resolves with the exit. */
  kill(deadlineMs: number): Promise<ProcessExit>;
}

export interface ProcessRunner {
  run(argv: Argv, options: RunOptions): Promise<RunResult>;
  spawn(argv: Argv, options?: SpawnOptions): Promise<SupervisedProcess>;
  /**
   * kill(2) on a process this runner did not start (pf_bb_config's daemon). Signal 0 only checks
   * that it exists. Returns false when there is no such process.
   */
  signal(pid: number, signal: NodeJS.Signals | 0): boolean;
}

/** The result of a command that must succeed; otherwise an error naming it and its first stderr line. */
export function requireSuccess(argv: Argv, result: RunResult): RunResult {
  if (result.code === 0) return result;
  const how =
    result.code === null
      ? `was killed by ${result.signal ?? 'a signal'}`
      : `exited with status ${result.code}`;
  const why = firstLine(result.stderr) || firstLine(result.stdout);
  throw new VfbError('UNAVAILABLE', `\`${renderArgv(argv)}\` ${how}${why ? `: ${why}` : ''}`, {
    hint: 'run the command by hand to see its full output',
    details: { code: result.code ?? -1 },
  });
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '');
  return line === undefined ? '' : line.trim().slice(0, 200);
}
