/**
 * The demo's STAND-IN for pf_bb_config (github.com/intel/pf-bb-config) in VFIO mode, the PF driver
 * the intel-fec plugin runs as `pf_bb_config <DEVICE> -p <bdf> -c <cfg> -v <token>`. Like the real
 * one it configures the card, then leaves a daemon with the same command line that keeps the PF
 * open (and with it the token), logs `<DEVICE> PF [<bdf>] configuration complete!` to
 * `<logDirectory>/pf_bb_cfg_<bdf>.log` and serves `<socketDirectory>/pf_bb_config.<bdf>.sock` until
 * SIGTERM. It opens the PF without a token and then sets it, as the real one does, so it too
 * cannot be restarted while a VF is open. Unlike it, it configures nothing: the PF it opens is the
 * demo's simulated host's.
 */
import { spawn } from 'node:child_process';
import { closeSync, writeSync } from 'node:fs';
import { appendFile, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { openSimulatedSysfs, type SimulatedSysfsOptions } from '../../sysfs/persistent.js';
import { errnoOf, untilStopped, valueAfter } from './common.js';

export interface PfBbConfigSettings extends SimulatedSysfsOptions {
  /** Where pf_bb_cfg_<bdf>.log goes (compiled into the real program: /var/log). */
  readonly logDirectory: string;
  /** Where pf_bb_config.<bdf>.sock goes (compiled into the real program: /tmp). */
  readonly socketDirectory: string;
}

/** Tells the forked copy that it is the daemon; its command line stays the same, for pgrep. */
const DAEMON_ENV = 'VFBROKER_DEMO_PF_BB_CONFIG_DAEMON';
/** The daemon reports on this descriptor whether it configured the PF. */
const REPORT_FD = 3;
const STATUS_FAILED = 255;

interface Invocation {
  readonly device: string;
  readonly pf: string;
  readonly config: string;
  readonly token: string | undefined;
}

export async function main(settings: PfBbConfigSettings): Promise<void> {
  const args = process.argv.slice(2);
  const [device] = args;
  const pf = valueAfter(args, '-p');
  const config = valueAfter(args, '-c');
  if (device === undefined || pf === undefined || config === undefined) {
    process.stderr.write('usage: pf_bb_config DEVICE -p PCI_ID -c CFG [-v VFIO_TOKEN] (demo stand-in)\n');
    process.exitCode = STATUS_FAILED;
    return;
  }
  const invocation: Invocation = { device, pf, config, token: valueAfter(args, '-v') };
  if (process.env[DAEMON_ENV] === '1') await daemon(settings, invocation);
  else process.exitCode = await configure(settings, invocation, args);
}

/** The foreground part: start the daemon, wait for its verdict, exit as the real program does. */
async function configure(settings: PfBbConfigSettings, call: Invocation, args: string[]): Promise<number> {
  process.stdout.write(`== pf_bb_config Version v24.03 (vfbroker demo stand-in) ==\n`);
  const script = process.argv[1] ?? '';
  const child = spawn(process.execPath, [script, ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  const report = child.stdio[REPORT_FD] as Readable | null;
  let said = '';
  report?.setEncoding('utf8').on('data', (d: string) => (said += d));
  await new Promise<void>((resolve) => {
    report?.once('close', resolve);
    child.once('error', () => resolve());
  });
  child.unref();
  if (said.trim() !== 'ok') return STATUS_FAILED;
  process.stdout.write(`Log file = ${logFile(settings, call.pf)}\n`);
  return 0;
}

async function daemon(settings: PfBbConfigSettings, call: Invocation): Promise<void> {
  const log = logFile(settings, call.pf);
  const note = (level: 'INFO' | 'ERR', line: string) =>
    appendFile(log, `${new Date().toUTCString()}:${level}:${line}\n`, { mode: 0o600 });
  const fail = async (line: string) => {
    await note('ERR', line);
    await note('ERR', `${call.device} PF [${call.pf}] configuration failed!`);
    report('failed');
  };
  try {
    await readFile(call.config, 'utf8');
  } catch (err) {
    return fail(`cannot read the configuration file ${call.config} (${errnoOf(err)})`);
  }
  const sim = await openSimulatedSysfs(settings);
  let handle: number;
  try {
    handle = await sim.vfio.openDevice(call.pf);
    if (call.token !== undefined) await sim.vfio.setVfToken(handle, call.token);
  } catch (err) {
    return fail(`device(${call.device}) open failed (${errnoOf(err)})`);
  }
  await note('INFO', `${call.device} PF [${call.pf}] configuration complete!`);
  await note('INFO', 'Running in daemon mode for VFIO VF token');
  const server = await listen(join(settings.socketDirectory, `pf_bb_config.${call.pf}.sock`));
  report('ok');
  await untilStopped();
  await new Promise((resolve) => server.close(resolve));
  await sim.vfio.closeDevice(handle);
}

function logFile(settings: PfBbConfigSettings, pf: string): string {
  return join(settings.logDirectory, `pf_bb_cfg_${pf}.log`);
}

function report(outcome: 'ok' | 'failed'): void {
  writeSync(REPORT_FD, `${outcome}\n`);
  closeSync(REPORT_FD);
}

/** The command socket; the real daemon takes commands on it, this one only accepts and hangs up. */
async function listen(path: string): Promise<Server> {
  await rm(path, { force: true });
  const server = createServer((conn) => conn.end());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, resolve);
  });
  return server;
}
