/**
 * vfbroker's own processes as stage 3 starts them: the broker (`main.js serve`) as a child that
 * logs JSON lines on stdout, and one-shot CLI commands, each under the uid it is run as (what
 * `setpriv --reuid` would do, without needing setpriv in the guest).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The CLI of the build under test: this file is <build>/test/kernel/broker-process.js. */
export const CLI_MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

// Generous: the broker's start-up is a node start from 9p under TCG plus the PF holder's, each seconds
// to tens of seconds on a loaded host. run.sh's boot timeout backs this up.
const READY_TIMEOUT_MS = 240_000;
const STOP_TIMEOUT_MS = 60_000;

export interface Identity {
  readonly uid: number;
  readonly gid: number;
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `node main.js <args>` as `who`, with no input; resolves when it has exited and closed its output.
 * A process that could not start at all resolves with code null and the reason as its stderr.
 */
export function runCli(args: readonly string[], who: Identity, path?: string): Promise<CliResult> {
  return runProgram(process.execPath, [CLI_MAIN, ...args], who, path);
}

/**
 * Any program, as runCli runs the CLI: as `who`, no input, a consumer's own environment (PATH the
 * system's directories unless `path` is given).
 */
export function runProgram(
  file: string,
  args: readonly string[],
  who: Identity,
  path = '/usr/bin:/bin:/usr/sbin:/sbin',
): Promise<CliResult> {
  const child = spawn(file, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: who.uid,
    gid: who.gid,
    // A consumer's own environment: nothing of root's.
    env: { PATH: path, HOME: '/' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, stdout, stderr: `cannot start: ${err.message}` }));
    child.once('close', (code: number | null) => resolve({ code, stdout, stderr }));
  });
}

export class BrokerProcess {
  /** Everything it logged (pino JSON lines on stdout) and wrote to stderr. */
  output = '';
  private readonly exit: Promise<number | null>;

  private constructor(private readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.output += d));
    this.exit = once(child, 'exit').then(([code]) => code as number | null);
  }

  /** `vfbroker serve --config … --policy …` as root. */
  static start(configPath: string, policyPath: string): BrokerProcess {
    return new BrokerProcess(
      spawn(process.execPath, [CLI_MAIN, 'serve', '--config', configPath, '--policy', policyPath], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  }

  /**
   * The `broker ready` log line's PF states (`pf=state`, comma-separated), or what stopped the
   * broker before it got there.
   */
  async ready(): Promise<string> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      const line = this.logLines().find((l) => l['msg'] === 'broker ready');
      if (line !== undefined) {
        const pfs = (line['pfs'] ?? []) as { pf: string; state: string }[];
        return pfs.map((p) => `${p.pf}=${p.state}`).join(',');
      }
      if (!this.running) return `exited with status ${String(this.child.exitCode)} before it was ready`;
      if (Date.now() > deadline) return `not ready after ${READY_TIMEOUT_MS / 1000} s`;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** The `msg` of every log line at level error or above, for a failure's detail. */
  errors(): string[] {
    return this.logLines()
      .filter((l) => typeof l['level'] === 'number' && l['level'] >= 50)
      .map((l) => {
        const err = l['err'] as { message?: unknown } | undefined;
        return `${String(l['msg'])}${typeof err?.message === 'string' ? `: ${err.message}` : ''}`;
      });
  }

  /**
   * Seconds from the PF holder's start to the broker's next log line (its next step once the holder
   * answered, or the failure when it did not): how long one holder start takes in this guest.
   */
  holderStartSeconds(): number | null {
    const lines = this.logLines();
    const i = lines.map((l) => l['msg']).lastIndexOf('PF holder started');
    const [started, next] = [lines[i], lines[i + 1]];
    if (started === undefined || next === undefined) return null;
    return (logTime(next) - logTime(started)) / 1000;
  }

  /** How many log lines it has written so far: a mark for `logLinesSince`. */
  logMark(): number {
    return this.logLines().length;
  }

  /** The log lines (parsed pino JSON) written after `mark`. */
  logLinesSince(mark: number): Record<string, unknown>[] {
    return this.logLines().slice(mark);
  }

  /** SIGTERM, as systemd stops it; its exit status, or null when it had to be killed. */
  async stop(): Promise<number | null> {
    if (!this.running) return this.exit;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      return await this.exit;
    } finally {
      clearTimeout(timer);
    }
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  private logLines(): Record<string, unknown>[] {
    return this.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as Record<string, unknown>];
        } catch {
          return [];
        }
      });
  }
}

/** A pino line's time in ms: epoch ms, or an ISO string when the logger formats it. */
function logTime(line: Record<string, unknown>): number {
  const time = line['time'];
  return typeof time === 'number' ? time : Date.parse(String(time));
}
