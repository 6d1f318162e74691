/**
 * The argv libvirt gives a qemu hook (docs/hooks.rst, src/util/virhook.c): `<domain> <op> <subop>
 * <extra>`, with `-` for a missing value. `extra` is one argv element even when it holds a space
 * (`release end from snapshot`… arrives as "from snapshot").
 */

/** The ops the hook acts on; every other op (reconnect, attach, ones libvirt adds later) is ignored. */
export type HookOp =
  'prepare' | 'start' | 'started' | 'stopped' | 'release' | 'migrate' | 'restore' | 'other';

export interface HookInvocation {
  readonly domain: string;
  readonly op: HookOp;
  /** The op as libvirt named it, for logs (differs from `op` only for ignored ops). */
  readonly rawOp: string;
  readonly subop: string;
  /** `release`'s reason, or null for `-`. */
  readonly extra: string | null;
}

/** subop each acted-on op arrives with; the same op with another subop is not one we know. */
const KNOWN: Readonly<Record<Exclude<HookOp, 'other'>, string>> = {
  prepare: 'begin',
  start: 'begin',
  started: 'begin',
  stopped: 'end',
  release: 'end',
  migrate: 'begin',
  restore: 'begin',
};

/** Never fails: whatever libvirt (or a person) passes, an unknown shape is an ignored op. */
export function parseHookArgv(args: readonly string[]): HookInvocation {
  const [domain = '-', rawOp = '-', subop = '-', extra = '-'] = args;
  const op = isKnown(rawOp) && KNOWN[rawOp] === subop ? rawOp : 'other';
  return { domain, op, rawOp, subop, extra: extra === '-' ? null : extra };
}

function isKnown(op: string): op is Exclude<HookOp, 'other'> {
  return Object.hasOwn(KNOWN, op);
}
