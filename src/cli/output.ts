/**
 * The CLI's output layer: human text by default, one JSON document with --json, errors as one line
 * (plus a hint) on stderr. Nothing else in src/cli writes to the terminal, so every command gets
 * the same conventions: no colour unless stdout is a TTY and NO_COLOR is unset, exit codes from
 * the error catalogue (docs/errors.md).
 */
import { toVfbError, type VfbError } from '../errors.js';

export interface OutputOptions {
  readonly json: boolean;
  readonly stdout?: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr?: NodeJS.WritableStream;
}

export class Output {
  readonly json: boolean;
  readonly #stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly #stderr: NodeJS.WritableStream;

  constructor(options: OutputOptions) {
    this.json = options.json;
    this.#stdout = options.stdout ?? process.stdout;
    this.#stderr = options.stderr ?? process.stderr;
  }

  get colour(): boolean {
    return !this.json && this.#stdout.isTTY === true && !process.env['NO_COLOR'];
  }

  /** A command's result: `human` lines for people, `data` for --json. */
  result(human: readonly string[], data: unknown): void {
    this.#stdout.write(
      this.json ? JSON.stringify(data, null, 2) + '\n' : human.map((l) => l + '\n').join(''),
    );
  }

  /** Progress of a long operation; silent with --json so stdout stays one document. */
  progress(line: string): void {
    if (!this.json) this.#stderr.write(line + '\n');
  }

  warn(line: string): void {
    this.#stderr.write(`vfbroker: warning: ${line}\n`);
  }

  /** Reports a failure and returns the exit status for it. */
  error(err: unknown): number {
    const e: VfbError = toVfbError(err);
    if (this.json) {
      this.#stderr.write(
        JSON.stringify({ error: { code: e.code, message: e.message, hint: e.hint, ...e.details } }) + '\n',
      );
    } else {
      this.#stderr.write(`vfbroker: ${e.message}\n  hint: ${e.hint}\n`);
    }
    // A bug: say where, when asked to (the cause can be anything, so never by default).
    if (e.code === 'INTERNAL' && process.env['VFBROKER_DEBUG'] && e.cause instanceof Error) {
      this.#stderr.write(`${e.cause.stack ?? e.cause.message}\n`);
    }
    return e.exitCode;
  }
}
