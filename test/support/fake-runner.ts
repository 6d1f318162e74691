/**
 * A ProcessRunner for tests that behaves like processes do, scripted per command name:
 * - `onRun(name, handler)` answers one-shot commands (exit status, stdout, stderr);
 * - `onSpawn(name, handler)` gets a FakeProcess to drive: it sees what is written to stdin, emits
 *   stdout lines, exits or crashes when the script says so;
 * - `addExternal(pid, handler)` models processes the code under test did not start (a daemon it
 *   finds by pid) for `signal()`.
 * A command with no script is "not installed" and fails exactly as the real runner does. Every call
 * is recorded; tests read `calls` only where the command line itself is the behaviour under test.
 */
import { EventEmitter } from 'node:events';
import {
  plainArgv,
  redactSecrets,
  renderArgv,
  secretsOf,
  commandName,
  type Argv,
} from '../../src/process/argv.js';
import { commandNotFound } from '../../src/process/packages.js';
import { VfbError } from '../../src/errors.js';
import type {
  ProcessExit,
  ProcessRunner,
  RunOptions,
  RunResult,
  SpawnOptions,
  SupervisedProcess,
} from '../../src/process/runner.js';

export interface FakeResult {
  readonly code?: number;
  readonly stdout?: string;
  readonly stderr?: string;
}

/** Answers one command invocation; `argv` is the plain command line, secrets included. */
export type RunHandler = (
  argv: readonly string[],
  input: string | undefined,
) => FakeResult | Promise<FakeResult>;
export type SpawnHandler = (proc: FakeProcess, argv: readonly string[]) => void;

export interface FakeCall {
  readonly kind: 'run' | 'spawn';
  /** The plain command line, as the program would see it. */
  readonly argv: readonly string[];
  /** The command line as the runner logs it. */
  readonly rendered: string;
  readonly input: string | undefined;
}

export class FakeRunner implements ProcessRunner {
  readonly calls: FakeCall[] = [];
  readonly processes: FakeProcess[] = [];
  private readonly runHandlers = new Map<string, RunHandler>();
  private readonly spawnHandlers = new Map<string, SpawnHandler>();
  private readonly externals = new Map<number, (signal: NodeJS.Signals) => void>();
  private nextPid = 4000;

  onRun(command: string, handler: RunHandler | FakeResult): this {
    this.runHandlers.set(command, typeof handler === 'function' ? handler : () => handler);
    return this;
  }

  /** The command is no longer installed. */
  forget(command: string): this {
    this.runHandlers.delete(command);
    this.spawnHandlers.delete(command);
    return this;
  }

  onSpawn(command: string, handler: SpawnHandler): this {
    this.spawnHandlers.set(command, handler);
    return this;
  }

  /** A process found by pid; the handler decides what a signal does (call `removeExternal` to let it die). */
  addExternal(pid: number, onSignal: (signal: NodeJS.Signals) => void): void {
    this.externals.set(pid, onSignal);
  }

  removeExternal(pid: number): void {
    this.externals.delete(pid);
  }

  allocatePid(): number {
    return this.nextPid++;
  }

  /** Calls of one command, by executable name. */
  callsOf(command: string): FakeCall[] {
    return this.calls.filter((c) => c.argv[0]?.slice(c.argv[0].lastIndexOf('/') + 1) === command);
  }

  async run(argv: Argv, options: RunOptions): Promise<RunResult> {
    const handler = this.runHandlers.get(commandName(argv));
    const plain = plainArgv(argv);
    if (!handler) throw commandNotFound(argv[0], 'not scripted in this test');
    this.calls.push({ kind: 'run', argv: plain, rendered: renderArgv(argv), input: options.input });
    const result = await handler(plain, options.input);
    const secrets = secretsOf(argv);
    return {
      code: result.code ?? 0,
      signal: null,
      stdout: redactSecrets(result.stdout ?? '', secrets),
      stderr: redactSecrets(result.stderr ?? '', secrets),
    };
  }

  spawn(argv: Argv, _options?: SpawnOptions): Promise<SupervisedProcess> {
    const handler = this.spawnHandlers.get(commandName(argv));
    if (!handler) return Promise.reject(commandNotFound(argv[0], 'not scripted in this test'));
    const plain = plainArgv(argv);
    this.calls.push({ kind: 'spawn', argv: plain, rendered: renderArgv(argv), input: undefined });
    const proc = new FakeProcess(this.allocatePid(), renderArgv(argv), secretsOf(argv));
    this.processes.push(proc);
    // Scripts start "running" only after the caller had the chance to attach listeners.
    queueMicrotask(() => handler(proc, plain));
    return Promise.resolve(proc);
  }

  signal(pid: number, signal: NodeJS.Signals | 0): boolean {
    const proc = this.processes.find((p) => p.pid === pid && p.exitStatus === null);
    const external = this.externals.get(pid);
    if (!proc && !external) return false;
    if (signal === 0) return true;
    if (proc) proc.exit(null, signal);
    else external?.(signal);
    return true;
  }
}

export class FakeProcess extends EventEmitter implements SupervisedProcess {
  readonly exited: Promise<ProcessExit>;
  /** Everything written to stdin, in order. */
  readonly input: string[] = [];
  inputClosed = false;
  /** When true, SIGTERM is ignored and kill() needs its SIGKILL. */
  ignoreTerm = false;
  private exitValue: ProcessExit | null = null;
  private resolveExit!: (exit: ProcessExit) => void;
  private inputListener: ((data: string) => void) | null = null;

  constructor(
    readonly pid: number,
    readonly command: string,
    private readonly secrets: readonly string[],
  ) {
    super();
    this.exited = new Promise((resolve) => (this.resolveExit = resolve));
  }

  get exitStatus(): ProcessExit | null {
    return this.exitValue;
  }

  /** Script side: called with each write to stdin. */
  onInput(listener: (data: string) => void): void {
    this.inputListener = listener;
  }

  /** Script side: the process prints a line on stdout. */
  print(line: string): void {
    if (this.exitValue === null) this.emit('stdout', redactSecrets(line, this.secrets));
  }

  /** Script side: the process prints a line on stderr. */
  printError(line: string): void {
    if (this.exitValue === null) this.emit('stderr', redactSecrets(line, this.secrets));
  }

  /** Script side: the process exits (a crash, when the code under test did not ask for it). */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exitValue !== null) return;
    this.exitValue = { code, signal };
    this.emit('exit', this.exitValue);
    this.resolveExit(this.exitValue);
  }

  write(data: string): Promise<void> {
    if (this.exitValue !== null || this.inputClosed) {
      return Promise.reject(
        new VfbError('UNAVAILABLE', `\`${this.command}\` (pid ${this.pid}) is no longer accepting input`),
      );
    }
    this.input.push(data);
    queueMicrotask(() => this.inputListener?.(data));
    return Promise.resolve();
  }

  closeInput(): void {
    this.inputClosed = true;
  }

  kill(_deadlineMs: number): Promise<ProcessExit> {
    if (this.exitValue === null) this.exit(null, this.ignoreTerm ? 'SIGKILL' : 'SIGTERM');
    return this.exited;
  }
}
