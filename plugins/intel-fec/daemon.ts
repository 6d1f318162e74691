/**
 * pf_bb_config in VFIO mode configures the device, then forks a daemon that keeps the PF open (and
 * with it the token) and serves a command socket. It is not our child: it is found by its command
 * line (`pgrep -f`, which prints pids only, never the token), its socket tells whether it got as
 * far as serving, and its log file says whether the configuration succeeded.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { VfbError } from '../../src/errors.js';
import type { PciAddress } from '../../src/pci/address.js';
import type { PluginContext } from '../../src/plugins/contract.js';
import { redactSecrets } from '../../src/process/argv.js';

export interface DaemonPaths {
  readonly binary: string;
  readonly logDirectory: string;
  readonly socketDirectory: string;
}

const PGREP_TIMEOUT_MS = 5_000;
const STOP_DEADLINE_MS = 10_000;
const POLL_MS = 100;
/** Only the end of a large log is read: the lines of one run are at its end. */
const MAX_LOG_READ = 256 * 1024;

export function logFile(paths: DaemonPaths, pf: PciAddress): string {
  return path.join(paths.logDirectory, `pf_bb_cfg_${pf}.log`);
}

export function socketFile(paths: DaemonPaths, pf: PciAddress): string {
  return path.join(paths.socketDirectory, `pf_bb_config.${pf}.sock`);
}

/** The daemon's pid, or null. Matches `pf_bb_config <DEVICE> -p <bdf>`, the way vfbroker starts it. */
export async function findDaemon(
  ctx: PluginContext,
  paths: DaemonPaths,
  pf: PciAddress,
): Promise<number | null> {
  const name = escapeRegExp(path.basename(paths.binary));
  const pattern = `(^|/)${name} [A-Za-z0-9_]+ -p ${escapeRegExp(pf)}( |$)`;
  const result = await ctx.runner.run(['pgrep', '-f', pattern], { timeoutMs: PGREP_TIMEOUT_MS });
  if (result.code === 1) return null;
  if (result.code !== 0) {
    throw new VfbError(
      'UNAVAILABLE',
      `cannot look for the pf_bb_config daemon of ${pf}: pgrep exited with status ${result.code ?? 'none'}`,
    );
  }
  const pids = result.stdout
    .split('\n')
    .filter((l) => /^\d+$/.test(l.trim()))
    .map(Number);
  if (pids.length > 1) ctx.logger.warn({ pids }, `more than one pf_bb_config daemon serves ${pf}`);
  return pids[0] ?? null;
}

/** SIGTERM, wait, SIGKILL: pf_bb_config closes its socket and exits on SIGTERM. */
export async function stopDaemon(ctx: PluginContext, pid: number): Promise<void> {
  if (!ctx.runner.signal(pid, 'SIGTERM')) return;
  if (await gone(ctx, pid, STOP_DEADLINE_MS)) return;
  ctx.logger.warn({ pid }, 'pf_bb_config did not exit on SIGTERM; sending SIGKILL');
  ctx.runner.signal(pid, 'SIGKILL');
  if (!(await gone(ctx, pid, STOP_DEADLINE_MS))) {
    throw new VfbError('UNAVAILABLE', `pf_bb_config (pid ${pid}) does not exit, even on SIGKILL`);
  }
}

async function gone(ctx: PluginContext, pid: number, deadlineMs: number): Promise<boolean> {
  for (let waited = 0; waited <= deadlineMs; waited += POLL_MS) {
    if (!ctx.runner.signal(pid, 0)) return true;
    await sleep(POLL_MS);
  }
  return false;
}

/** Where the log ends now, so that only the lines of the next run are read. */
export async function logEnd(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

export type LogVerdict = { readonly ok: true } | { readonly ok: false; readonly line: string | null };

/**
 * What the run's log lines say: `<DEVICE> PF [<bdf>] configuration complete!` (config_app.c) is
 * success; otherwise the first `:ERR:` line, if any. `secrets` are scrubbed from the line kept.
 */
export async function readRunLog(
  file: string,
  from: number,
  pf: PciAddress,
  secrets: readonly string[],
): Promise<LogVerdict> {
  const text = await readTail(file, from);
  const lines = text.split('\n');
  if (lines.some((l) => l.includes(`PF [${pf}] configuration complete!`))) return { ok: true };
  const error = lines.find((l) => l.includes(':ERR:') || l.includes('configuration failed'));
  return { ok: false, line: error === undefined ? null : redactSecrets(error.trim(), secrets).slice(0, 300) };
}

async function readTail(file: string, from: number): Promise<string> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    // A log shorter than before was truncated or rotated: the run's lines start at 0.
    const start = Math.max(size < from ? 0 : from, size - MAX_LOG_READ);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
