/**
 * ProcessRunner on node:child_process. No shell is involved anywhere: argv goes to execve as is,
 * the executable is an absolute path or a bare name looked up in the search path (PATH by default),
 * and a missing one is reported with the package that provides it before anything is spawned.
 */
import { spawn as spawnChild, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { constants as fsConstants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { VfbError } from '../errors.js';
import type { Logger } from '../log.js';
import { plainArgv, redactSecrets, renderArgv, secretsOf, type Argv } from './argv.js';
import { LineSplitter } from './lines.js';
import { commandNotFound } from './packages.js';
import type {
  ProcessExit,
  ProcessRunner,
  RunOptions,
  RunResult,
  SpawnOptions,
  SupervisedProcess,
} from './runner.js';

/** Captured output of a one-shot command beyond this is dropped: nothing vfbroker runs prints more. */
const MAX_CAPTURE = 1024 * 1024;
const DEFAULT_MAX_LINE = 64 * 1024;

export interface NodeRunnerOptions {
  readonly logger: Logger;
  /** Directories searched for a bare command name, `:`-separated; PATH when absent. */
  readonly searchPath?: string;
}

export function createNodeRunner(options: NodeRunnerOptions): ProcessRunner {
  return new NodeProcessRunner(
    options.logger,
    options.searchPath ?? process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
  );
}

class NodeProcessRunner implements ProcessRunner {
  constructor(
    private readonly logger: Logger,
    private readonly searchPath: string,
  ) {}

  async run(argv: Argv, options: RunOptions): Promise<RunResult> {
    const command = renderArgv(argv);
    const secrets = secretsOf(argv);
    const child = await this.start(argv, command);
    this.logger.debug({ cmd: command, pid: child.pid }, 'running command');
    const stdout = capture(child.stdout);
    const stderr = capture(child.stderr);
    child.stdin?.on('error', () => {
      // EPIPE when the command exits without reading its input; its exit status tells the story.
    });
    child.stdin?.end(options.input ?? '');

    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    const exit = await closed(child);
    clearTimeout(timer);
    this.logger.debug({ cmd: command, code: exit.code, signal: exit.signal }, 'command finished');
    if (timedOut) {
      throw new VfbError(
        'TIMEOUT',
        `\`${command}\` did not finish within ${options.timeoutMs} ms and was killed`,
        {
          details: { timeoutMs: options.timeoutMs },
        },
      );
    }
    return { ...exit, stdout: redactSecrets(stdout(), secrets), stderr: redactSecrets(stderr(), secrets) };
  }

  async spawn(argv: Argv, options: SpawnOptions = {}): Promise<SupervisedProcess> {
    const command = renderArgv(argv);
    const child = await this.start(argv, command);
    this.logger.debug({ cmd: command, pid: child.pid }, 'started process');
    const proc = new NodeSupervisedProcess(
      child,
      command,
      secretsOf(argv),
      options.maxLineLength ?? DEFAULT_MAX_LINE,
    );
    void proc.exited.then((exit) =>
      this.logger.debug({ cmd: command, pid: proc.pid, ...exit }, 'process exited'),
    );
    return proc;
  }

  signal(pid: number, signal: NodeJS.Signals | 0): boolean {
    if (!Number.isSafeInteger(pid) || pid <= 1) {
      throw new VfbError('INVALID_ARGUMENT', `refusing to signal pid ${pid}`);
    }
    try {
      process.kill(pid, signal);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ESRCH') return false;
      if (code === 'EPERM') throw new VfbError('DENIED', `not allowed to signal pid ${pid}`, { cause: err });
      throw err;
    }
  }

  /** Resolves the executable, spawns it and waits until the kernel has exec'd it. */
  private async start(argv: Argv, command: string): Promise<ChildProcess> {
    const [file, ...args] = plainArgv(argv);
    const executable = await this.resolve(file);
    const child = spawnChild(executable, args, { stdio: ['pipe', 'pipe', 'pipe'], shell: false });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? commandNotFound(file, executable)
            : new VfbError('UNAVAILABLE', `cannot start \`${command}\`: ${err.code ?? 'error'}`, {
                cause: err,
              }),
        ),
      );
    });
    return child;
  }

  private async resolve(file: string): Promise<string> {
    if (file.includes('/')) {
      if (!path.isAbsolute(file)) {
        throw new VfbError(
          'INVALID_ARGUMENT',
          `command ${JSON.stringify(file)} must be an absolute path or a bare name`,
        );
      }
      if (await isExecutableFile(file)) return file;
      throw commandNotFound(file, 'no executable file at that path');
    }
    for (const dir of this.searchPath.split(':')) {
      if (dir === '' || !path.isAbsolute(dir)) continue;
      const candidate = path.join(dir, file);
      if (await isExecutableFile(candidate)) return candidate;
    }
    throw commandNotFound(file, `searched ${this.searchPath}`);
  }
}

class NodeSupervisedProcess extends EventEmitter implements SupervisedProcess {
  readonly pid: number;
  readonly exited: Promise<ProcessExit>;
  private exitValue: ProcessExit | null = null;

  constructor(
    private readonly child: ChildProcess,
    readonly command: string,
    secrets: readonly string[],
    maxLineLength: number,
  ) {
    super();
    // 'spawn' has fired, so the pid is known.
    this.pid = child.pid as number;
    for (const stream of ['stdout', 'stderr'] as const) {
      const splitter = new LineSplitter(maxLineLength, (line) =>
        this.emit(stream, redactSecrets(line, secrets)),
      );
      child[stream]?.on('data', (chunk: Buffer) => splitter.push(chunk));
      child[stream]?.on('end', () => splitter.end());
    }
    child.stdin?.on('error', () => {
      // EPIPE after the process died; write() reports it to the caller.
    });
    this.exited = closed(child).then((exit) => {
      this.exitValue = exit;
      this.emit('exit', exit);
      return exit;
    });
  }

  get exitStatus(): ProcessExit | null {
    return this.exitValue;
  }

  write(data: string): Promise<void> {
    const stdin = this.child.stdin;
    if (this.exitValue !== null || !stdin || stdin.writableEnded || stdin.destroyed) {
      return Promise.reject(
        new VfbError('UNAVAILABLE', `\`${this.command}\` (pid ${this.pid}) is no longer accepting input`),
      );
    }
    return new Promise((resolve, reject) => {
      stdin.write(data, (err) =>
        err
          ? reject(
              new VfbError('UNAVAILABLE', `cannot write to \`${this.command}\` (pid ${this.pid})`, {
                cause: err,
              }),
            )
          : resolve(),
      );
    });
  }

  closeInput(): void {
    this.child.stdin?.end();
  }

  async kill(deadlineMs: number): Promise<ProcessExit> {
    if (this.exitValue !== null) return this.exitValue;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), deadlineMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

function closed(child: ChildProcess): Promise<ProcessExit> {
  return new Promise((resolve) =>
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => resolve({ code, signal })),
  );
}

function capture(stream: NodeJS.ReadableStream | null): () => string {
  const chunks: Buffer[] = [];
  let size = 0;
  stream?.on('data', (chunk: Buffer) => {
    if (size >= MAX_CAPTURE) return;
    const kept = chunk.subarray(0, MAX_CAPTURE - size);
    chunks.push(kept);
    size += kept.length;
  });
  return () => Buffer.concat(chunks).toString('utf8');
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    await access(file, fsConstants.X_OK);
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}
