/**
 * Figures about another process, from /proc (Linux): its CPU time and its peak resident memory.
 * Used for the broker child and the dbus-daemon, whose own counters the bench cannot call.
 */
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { VfbError } from '../../src/errors.js';

let clockTicks: number | undefined;

/** User + system CPU time of `pid` so far, in seconds (/proc/PID/stat fields 14 and 15). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) {
    throw new VfbError('UNAVAILABLE', `/proc/${pid}/stat has no CPU times`);
  }
  clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  return (utime + stime) / clockTicks;
}

/** VmHWM: the most resident memory `pid` has had, in bytes. */
export async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+([0-9]+) kB$/m.exec(status)?.[1];
  if (kb === undefined) throw new VfbError('UNAVAILABLE', `/proc/${pid}/status has no VmHWM line`);
  return Number(kb) * 1024;
}
