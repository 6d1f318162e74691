/**
 * The PF holder as its parent sees it: a child process started the way the generic plugin starts it
 * (`node PF_HOLDER_MAIN --pf <addr>`, stdin/stdout pipes), driven one JSON line at a time.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { PF_HOLDER_MAIN } from '../../src/pfholder/index.js';

// Generous: an ioctl answers in milliseconds, but node starts from a 9p share under TCG, and on a
// busy host one start has been seen to take 30 s. The boot timeout in run.sh backs this up.
const LINE_TIMEOUT_MS = 120_000;

export class HolderProcess {
  private readonly lines: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private ended = false;
  /** Everything the holder wrote to stderr (its pino log lines). */
  stderr = '';
  /** Everything it wrote to stdout (the protocol). */
  stdout = '';

  private constructor(private readonly child: ChildProcessWithoutNullStreams) {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (this.stderr += chunk));
    const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
    rl.on('line', (line) => {
      this.stdout += `${line}\n`;
      this.push(line);
    });
    rl.on('close', () => {
      this.ended = true;
      this.push(null);
    });
  }

  static start(pf: string): HolderProcess {
    return new HolderProcess(spawn(process.execPath, [PF_HOLDER_MAIN, '--pf', pf], { stdio: 'pipe' }));
  }

  /** The next line the holder printed, parsed; null once its stdout has closed. */
  async next(): Promise<unknown> {
    const line = this.lines.shift() ?? (this.ended ? null : await this.wait());
    return line === null ? null : (JSON.parse(line) as unknown);
  }

  async request(request: object): Promise<unknown> {
    this.child.stdin.write(`${JSON.stringify(request)}\n`);
    return this.next();
  }

  /** Close stdin (the holder's normal shutdown) and return its exit code. */
  async closeStdin(): Promise<number | null> {
    const exited = this.exited();
    this.child.stdin.end();
    return exited;
  }

  /** Send SIGTERM and return its exit code. */
  async terminate(): Promise<number | null> {
    const exited = this.exited();
    this.child.kill('SIGTERM');
    return exited;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async exited(): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    const [code] = (await once(this.child, 'exit')) as [number | null];
    return code;
  }

  private push(line: string | null): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(line);
    } else if (line !== null) {
      this.lines.push(line);
    }
  }

  private wait(): Promise<string | null> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`the PF holder printed nothing for ${LINE_TIMEOUT_MS / 1000} s`));
      }, LINE_TIMEOUT_MS);
      this.waiter = (line) => {
        clearTimeout(timer);
        resolve(line);
      };
    });
  }
}
