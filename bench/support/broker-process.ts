/**
 * Starts broker-child.ts as a child process and talks to it: wait for `ready`, sample its memory and
 * event loop, read its peak RSS from /proc, stop it. If the bench exits first, the child gets SIGTERM
 * and stops by itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { open } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { peakRss } from './proc.js';
import type { ChildMessage, ChildSpec, ResourceSample, SavedHost } from './broker-protocol.js';
import { VfbError } from '../../src/errors.js';

const CHILD = fileURLToPath(new URL('./broker-child.js', import.meta.url));
/** 64 PFs × 64 VFs take a few seconds to bring up on the simulator; this is for slow machines. */
const READY_DEADLINE_MS = 120_000;
const REPLY_DEADLINE_MS = 10_000;
const STOP_DEADLINE_MS = 15_000;

export interface BrokerChild {
  readonly pid: number;
  /** How long building the world and exporting it took. */
  readonly buildMs: number;
  /** Where the child saved the simulated host, when asked to. */
  readonly host: SavedHost | null;
  sample(): Promise<ResourceSample>;
  /** VmHWM: the most resident memory the broker has had, bytes. */
  peakRss(): Promise<number>;
  /** Asks it to stop in order; SIGKILL past the deadline. Idempotent. */
  stop(): Promise<void>;
}

export interface ChildOptions {
  /** Where its JSON log lines go. */
  readonly logFile: string;
  /** Node options for the broker, e.g. --cpu-prof. */
  readonly execArgv?: readonly string[];
}

export async function startBrokerChild(spec: ChildSpec, options: ChildOptions): Promise<BrokerChild> {
  const log = await open(options.logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    child = fork(CHILD, [JSON.stringify(spec)], {
      stdio: ['ignore', log.fd, 'inherit', 'ipc'],
      execArgv: [...(options.execArgv ?? [])],
    });
  } finally {
    await log.close();
  }
  const kill = (): void => void child.kill('SIGKILL');
  // Exiting, the bench cannot wait: SIGTERM lets the broker remove its files by itself.
  const terminate = (): void => void child.kill('SIGTERM');
  process.once('exit', terminate);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid as number;
  try {
    const ready = await nextMessage(child, 'ready', READY_DEADLINE_MS);
    return {
      pid,
      buildMs: ready.buildMs,
      host: ready.host,
      async sample() {
        // A Ctrl-C reaches the child too, and it stops by itself: a send on its closed channel
        // would be an unhandled 'error' event on the child, not a rejection the bench can handle.
        if (!child.connected) throw new VfbError('UNAVAILABLE', 'the bench broker has exited');
        const reply = nextMessage(child, 'sample', REPLY_DEADLINE_MS);
        // With a callback, a failed send is reported there; the reply then rejects on the exit.
        child.send({ type: 'sample' }, () => undefined);
        const { rss, heapUsed, heapTotal, external, loopActiveMs, loopIdleMs, gcPauseMs, markCompacts } =
          await reply;
        return { rss, heapUsed, heapTotal, external, loopActiveMs, loopIdleMs, gcPauseMs, markCompacts };
      },
      peakRss: () => peakRss(pid),
      async stop() {
        if (child.exitCode === null && child.signalCode === null) {
          if (child.connected) child.send({ type: 'stop' });
          const timer = setTimeout(kill, STOP_DEADLINE_MS);
          await exited;
          clearTimeout(timer);
        }
        process.off('exit', terminate);
      },
    };
  } catch (err) {
    kill();
    await exited;
    process.off('exit', terminate);
    throw err;
  }
}

type Reply<T extends ChildMessage['type']> = Extract<ChildMessage, { type: T }>;

/** The child's next message of `type`; rejects on `failed`, on exit and past the deadline. */
function nextMessage<T extends 'ready' | 'sample'>(
  child: ChildProcess,
  type: T,
  deadlineMs: number,
): Promise<Reply<T>> {
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    const onMessage = (message: ChildMessage): void => {
      if (message.type === 'failed') {
        done();
        reject(new VfbError('UNAVAILABLE', `the bench broker failed: ${message.message}`));
      } else if (message.type === type) {
        done();
        resolve(message as Reply<T>);
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      done();
      reject(new VfbError('UNAVAILABLE', `the bench broker exited (${signal ?? `status ${code}`})`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new VfbError('TIMEOUT', `the bench broker sent no ${type} within ${deadlineMs} ms`));
    }, deadlineMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}
