/**
 * What /proc says about a caller the bus has vouched for: its groups (/proc/PID/status) and the
 * systemd unit it runs in (/proc/PID/cgroup). Pure parsers, so the rules are tested without /proc.
 */

export interface ProcStatus {
  /** Real, effective, saved and filesystem uid. */
  readonly uids: readonly number[];
  /** The effective gid followed by the supplementary groups, without duplicates. */
  readonly gids: readonly number[];
}

/** `cat /proc/PID/status`: the Uid:, Gid: and Groups: lines. Null when they are missing or garbled. */
export function parseProcStatus(text: string): ProcStatus | null {
  const field = (name: string): number[] | null => {
    const line = text.split('\n').find((l) => l.startsWith(`${name}:`));
    if (line === undefined) return null;
    const values = line.slice(name.length + 1).trim();
    if (values === '') return [];
    const ids = values.split(/\s+/).map(Number);
    return ids.every((n) => Number.isInteger(n) && n >= 0) ? ids : null;
  };
  const uids = field('Uid');
  const gids = field('Gid');
  const groups = field('Groups');
  if (uids?.length !== 4 || gids?.length !== 4 || groups === null) return null;
  return { uids, gids: [...new Set([gids[1] as number, ...groups])] };
}

const UNIT = /^[A-Za-z0-9:_.\\@-]+\.(service|scope)$/;

/**
 * The unit of a process, as systemd's cg_path_get_unit finds it: the first component of the cgroup
 * path that is not a slice. `/system.slice/libvirtd.service` → libvirtd.service;
 * `/user.slice/user-1000.slice/user@1000.service/app.slice/x.service` → user@1000.service (the
 * part below is the user's to shape, so only the system-managed unit counts). Null outside a unit.
 */
export function unitFromCgroup(text: string): string | null {
  const lines = text.split('\n');
  // Legacy and hybrid hierarchies track units in name=systemd; the unified one in the 0:: line.
  const line = lines.find((l) => /^\d+:name=systemd:/.test(l)) ?? lines.find((l) => l.startsWith('0::'));
  if (line === undefined) return null;
  const path = line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1);
  for (const raw of path.split('/')) {
    if (raw === '') continue;
    // systemd escapes a component that could clash with a kernel file name with a leading "_".
    const name = raw.startsWith('_') ? raw.slice(1) : raw;
    if (name.endsWith('.slice')) continue;
    return UNIT.test(name) ? name : null;
  }
  return null;
}
