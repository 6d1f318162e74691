/**
 * What every command shares: the global options, the output layer, and a broker client whose
 * connection is always closed again.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { Output } from './output.js';
import { DEFAULT_BROKER_CONFIG_PATH } from '../config/broker-config.js';
import { DEFAULT_POLICY_PATH } from '../config/policy-config.js';
import type { BrokerClient } from '../dbus/client.js';

export interface GlobalOptions {
  readonly json: boolean;
  readonly config: string;
  readonly policy: string;
  /** A D-Bus address instead of the system bus (a private bus, `vfbroker demo --keep`). */
  readonly bus: string | undefined;
  readonly timeout: number;
}

export function addGlobalOptions(program: Command): Command {
  return program
    .option('--json', 'print one JSON document instead of text', false)
    .option('--config <file>', 'broker configuration', DEFAULT_BROKER_CONFIG_PATH)
    .option('--policy <file>', 'consumer policy', DEFAULT_POLICY_PATH)
    .option('--bus <address>', 'D-Bus address of the broker’s bus (default: the system bus)')
    .option('--timeout <ms>', 'deadline for each call to the broker', (v) => parseMs(v), 10_000);
}

export function globals(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export function outputFor(cmd: Command): Output {
  return new Output({ json: globals(cmd).json });
}

/** Runs `fn` with a connected client and closes the connection whatever happens. */
export async function withClient<T>(cmd: Command, fn: (client: BrokerClient) => Promise<T>): Promise<T> {
  const g = globals(cmd);
  const { BrokerClient } = await import('../dbus/client.js');
  const client = await BrokerClient.connect({
    ...(g.bus === undefined ? {} : { address: g.bus }),
    callTimeoutMs: g.timeout,
  });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function parseMs(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0 || n > 600_000)
    throw new InvalidArgumentError('expected milliseconds from 1 to 600000');
  return n;
}
