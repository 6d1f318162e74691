/**
 * When a process started, from /proc: `/proc/PID/stat` field 22 (starttime, in clock ticks since
 * boot) plus `/proc/stat`'s `btime` (boot time, whole seconds since the epoch). Used to tell a
 * process from a later one that was given the same pid.
 *
 * Shell equivalent: `ps -o lstart= -p PID`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * USER_HZ, the unit of starttime: fixed at 100 by the kernel's ABI on every architecture vfbroker
 * runs on (sysconf(_SC_CLK_TCK), which Node cannot call).
 */
const CLOCK_TICKS_PER_SECOND = 100;

/** starttime from the text of /proc/PID/stat; null when garbled. */
export function parseStartTicks(stat: string): number | null {
  // Field 2, the command name, is in parentheses and may itself hold spaces and parentheses.
  const fields = stat
    .slice(stat.lastIndexOf(')') + 1)
    .trim()
    .split(' ');
  // fields[0] is field 3 (state), so field 22 is fields[19].
  const ticks = Number(fields[19]);
  return Number.isSafeInteger(ticks) && ticks >= 0 ? ticks : null;
}

/** btime from the text of /proc/stat; null when missing. */
export function parseBootTime(stat: string): number | null {
  const line = stat.split('\n').find((l) => l.startsWith('btime '));
  const seconds = Number(line?.slice('btime '.length).trim());
  return line !== undefined && Number.isSafeInteger(seconds) && seconds > 0 ? seconds : null;
}

/**
 * When process `pid` started, in ms since the epoch, to within a second (btime is whole seconds);
 * null when no such process exists or /proc cannot be read.
 */
export async function processStartMs(pid: number, procRoot = '/proc'): Promise<number | null> {
  try {
    const [own, system] = await Promise.all([
      readFile(join(procRoot, String(pid), 'stat'), 'utf8'),
      readFile(join(procRoot, 'stat'), 'utf8'),
    ]);
    const ticks = parseStartTicks(own);
    const boot = parseBootTime(system);
    if (ticks === null || boot === null) return null;
    return boot * 1000 + (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return null;
  }
}
