/**
 * The broker's side of the PF holder protocol (src/pfholder): JSON lines over the holder's stdin and
 * stdout, answered in order. The holder first prints `{"ready":true,"pf":…}` (or ready:false and
 * exits); then each request gets one answer. The token travels only in a set-token request on
 * stdin: never in argv, env, a log line or an error.
 */
import { VfbError } from '../../src/errors.js';
import type { PciAddress } from '../../src/pci/address.js';
import { redactSecrets } from '../../src/process/argv.js';
import type { SupervisedProcess } from '../../src/process/runner.js';
import { describeExit } from '../../src/process/wait-line.js';

const REQUEST_TIMEOUT_MS = 10_000;
const KILL_DEADLINE_MS = 5_000;

type Message = Record<string, unknown>;

interface Waiter {
  resolve(message: Message): void;
  reject(err: Error): void;
}

export interface HolderStatus {
  readonly open: boolean;
  readonly tokenSet: boolean;
}

export class HolderClient {
  /** The head waits for the next line; the first one waits for the ready line. */
  private readonly waiters: Waiter[] = [];
  private failure: VfbError | null = null;
  private readonly ready: Promise<Message>;

  constructor(
    private readonly proc: SupervisedProcess,
    private readonly pf: PciAddress,
  ) {
    this.ready = new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    // Until someone awaits it, a failed start must not become an unhandled rejection.
    this.ready.catch(() => undefined);
    proc.on('stdout', (line) => this.onLine(line));
    proc.on('exit', (exit) =>
      this.fail(new VfbError('UNAVAILABLE', `the PF holder of ${pf} exited (${describeExit(exit)})`)),
    );
  }

  /** Resolves once the holder has checked the PF; fails with the holder's errno otherwise. */
  async waitReady(timeoutMs: number): Promise<void> {
    const ready = await this.bounded(this.ready, timeoutMs, 'report ready');
    if (ready['ready'] !== true) throw this.refusal(ready, 'could not open', []);
  }

  async setToken(token: string): Promise<void> {
    const answer = await this.request({ op: 'set-token', token }, [token]);
    if (answer['ok'] !== true) throw this.refusal(answer, 'could not set the token of', [token]);
  }

  async status(): Promise<HolderStatus> {
    const answer = await this.request({ op: 'status' }, []);
    if (answer['ok'] !== true) throw this.refusal(answer, 'could not report on', []);
    return { open: answer['open'] === true, tokenSet: answer['tokenSet'] === true };
  }

  private async request(message: Message, secrets: readonly string[]): Promise<Message> {
    if (this.failure) throw this.failure;
    const answer = new Promise<Message>((resolve, reject) => this.waiters.push({ resolve, reject }));
    try {
      await this.proc.write(`${JSON.stringify(message)}\n`);
    } catch (err) {
      // Never let a write error carry the line that held the token.
      throw new VfbError(
        'UNAVAILABLE',
        redactSecrets(`the PF holder of ${this.pf} is not accepting requests`, secrets),
        { cause: err },
      );
    }
    return this.bounded(answer, REQUEST_TIMEOUT_MS, `answer ${String(message['op'])}`);
  }

  private async bounded(answer: Promise<Message>, timeoutMs: number, what: string): Promise<Message> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        // A late answer would be taken for the next request's, so a holder that stalls is ended.
        const err = new VfbError(
          'TIMEOUT',
          `the PF holder of ${this.pf} did not ${what} within ${timeoutMs} ms`,
        );
        this.fail(err);
        void this.proc.kill(KILL_DEADLINE_MS);
        reject(err);
      }, timeoutMs);
    });
    try {
      return await Promise.race([answer, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private onLine(line: string): void {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      message = null;
    }
    if (message === null || typeof message !== 'object' || Array.isArray(message)) {
      this.fail(
        new VfbError(
          'UNAVAILABLE',
          `the PF holder of ${this.pf} broke the protocol (a stdout line that is not a JSON object)`,
        ),
      );
      void this.proc.kill(KILL_DEADLINE_MS);
      return;
    }
    this.waiters.shift()?.resolve(message as Message);
  }

  private fail(err: VfbError): void {
    this.failure ??= err;
    for (const waiter of this.waiters.splice(0)) waiter.reject(err);
  }

  private refusal(answer: Message, doing: string, secrets: readonly string[]): VfbError {
    const errno = typeof answer['errno'] === 'string' ? answer['errno'].slice(0, 16) : 'EIO';
    const said =
      typeof answer['message'] === 'string'
        ? redactSecrets(answer['message'], secrets).slice(0, 200)
        : 'no reason given';
    return new VfbError('KERNEL_REFUSED', `the PF holder ${doing} PF ${this.pf}: ${said} (${errno})`, {
      hint: 'the PF must be bound to vfio-pci with its IOMMU group viable; `vfbroker pf status` and dmesg say more',
      details: { errno },
    });
  }
}
