/**
 * Finding and stopping the demo's processes. Every process the demo starts names the workspace on
 * its command line (the broker's --config, the bus's --config-file, the stand-ins' own paths), and
 * the workspace is a fresh mkdtemp directory, so "a process whose command line names it" is exactly
 * "one of ours" — including pf_bb_config's daemon, which detaches and outlives the broker on purpose.
 *
 * Command lines are read and matched here and never printed: pf_bb_config's carries the token.
 * Shell equivalent: `pgrep -f <workspace>/`, `kill -TERM`, `kill -KILL`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

const POLL_MS = 50;

/** Pids of live processes (zombies excluded) whose command line names `dir`, other than us. */
export function processesNaming(dir: string): number[] {
  const needle = dir.endsWith('/') ? dir : `${dir}/`;
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || !isLive(pid)) continue;
    const cmdline = readProc(pid, 'cmdline');
    if (cmdline !== null && cmdline.split('\0').some((arg) => arg.includes(needle))) pids.push(pid);
  }
  return pids;
}

/** Whether the process exists and has not exited (a zombie waits only for its parent to reap it). */
export function isLive(pid: number): boolean {
  const stat = readProc(pid, 'stat');
  if (stat === null) return false;
  // The state follows the command name in parentheses, which may itself contain ") ".
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X' && state !== '';
}

/**
 * SIGTERM, then SIGKILL for whatever still runs at the deadline. Resolves with the pids that are
 * still there a deadline after SIGKILL (a process stuck in the kernel), normally none.
 */
export async function stopProcesses(pids: readonly number[], deadlineMs: number): Promise<number[]> {
  for (const pid of pids) signal(pid, 'SIGTERM');
  let left = await waitGone(pids, deadlineMs);
  for (const pid of left) signal(pid, 'SIGKILL');
  left = await waitGone(left, deadlineMs);
  return left;
}

async function waitGone(pids: readonly number[], deadlineMs: number): Promise<number[]> {
  const until = Date.now() + deadlineMs;
  let left = pids.filter(isLive);
  while (left.length > 0 && Date.now() < until) {
    await sleep(POLL_MS);
    left = left.filter(isLive);
  }
  return left;
}

/** The synchronous last resort, for an exit handler: SIGKILL, no waiting. */
export function killNow(pids: readonly number[]): void {
  for (const pid of pids) signal(pid, 'SIGKILL');
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already (ESRCH); EPERM cannot happen for our own processes.
  }
}

function readProc(pid: number, file: 'cmdline' | 'stat'): string | null {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'latin1');
  } catch {
    return null;
  }
}
