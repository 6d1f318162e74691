/**
 * The real broker, `vfbroker serve`, as a child process of the demo: the same CLI entry point
 * systemd runs, with the demo's broker.yaml and policy. Its JSON log lines go to a file in the
 * workspace, which outlives the demo with --keep.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { VfbError } from '../errors.js';
import type { BrokerClient } from '../dbus/client.js';
import type { Workspace } from './workspace.js';

/** The `vfbroker` command as built next to this module. */
export const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

/** Bring-up of three PFs with their drivers takes about a second; this is for slow machines. */
const READY_DEADLINE_MS = 30_000;
const POLL_MS = 50;
const STOP_DEADLINE_MS = 25_000;

export interface BrokerProcess {
  readonly pid: number;
  /** The command line, for the transcript. */
  readonly argv: readonly string[];
  /** Resolves once the broker answers on the bus; rejects with its own words if it exits first. */
  ready(client: BrokerClient): Promise<void>;
  /** SIGTERM (its ordered shutdown), SIGKILL past the deadline; idempotent. */
  stop(): Promise<void>;
  leaveRunning(): void;
}

export async function startBrokerProcess(ws: Workspace, policy: string): Promise<BrokerProcess> {
  const argv = [CLI_MAIN, 'serve', '--config', ws.brokerConfig, '--policy', policy];
  const log = openSync(ws.brokerLog, 'a', 0o600);
  let child: ChildProcess;
  try {
    // A process group of its own: a Ctrl-C reaches only the demo, which then stops it in order.
    child = spawn(process.execPath, argv, { stdio: ['ignore', log, log], detached: true });
  } finally {
    closeSync(log);
  }
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) =>
      reject(new VfbError('UNAVAILABLE', `cannot start the broker: ${err.message}`, { cause: err })),
    );
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  await spawned;
  return {
    pid: child.pid as number,
    argv: ['vfbroker', ...argv.slice(1)],
    async ready(client) {
      const deadline = Date.now() + READY_DEADLINE_MS;
      for (;;) {
        if (!running()) throw await brokerFailed(ws);
        try {
          await client.status();
          return;
        } catch (err) {
          if (Date.now() > deadline) {
            throw new VfbError('TIMEOUT', `the broker did not answer within ${READY_DEADLINE_MS} ms`, {
              hint: `read ${ws.brokerLog}`,
              cause: err,
            });
          }
        }
        await sleep(POLL_MS);
      }
    },
    async stop() {
      process.off('exit', killOnExit);
      if (!running()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
      await exited;
      clearTimeout(timer);
    },
    leaveRunning() {
      process.off('exit', killOnExit);
      child.unref();
    },
  };
}

/** The broker's own last words: `vfbroker: <message>` from its CLI entry point on stderr. */
async function brokerFailed(ws: Workspace): Promise<VfbError> {
  const text = await readFile(ws.brokerLog, 'utf8').catch(() => '');
  const said = text
    .split('\n')
    .filter((l) => l.startsWith('vfbroker: '))
    .at(-1);
  return new VfbError('UNAVAILABLE', `the broker exited during start-up${said ? ` (${said})` : ''}`, {
    hint: `read ${ws.brokerLog}`,
  });
}
