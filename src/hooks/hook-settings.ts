/**
 * Where the installed hook finds the broker and the host's PCI devices. libvirt runs hooks with an
 * almost empty environment, so these come from a small JSON file that `vfbroker install` writes
 * from broker.yaml (/etc/vfbroker/hook.json); without it the hook uses the system bus, /sys and a
 * 5 s deadline. Plain JSON with a hand-written check: YAML and schema libraries would cost more
 * start-up time than the whole hook is allowed.
 *
 *   { "busAddress": "unix:path=/run/dbus/system_bus_socket", "deadlineMs": 5000,
 *     "sysfs": { "root": "/sys" } | { "simulator": { "fixture": "…", "stateFile": "…" } } }
 *
 * VFBROKER_HOOK_SETTINGS names another file: `vfbroker demo` and the tests run the hook themselves
 * and point it at their private bus and simulated host. libvirt never passes it.
 */
import { readFileSync } from 'node:fs';
import { VfbError } from '../errors.js';

export const DEFAULT_SETTINGS_FILE = '/etc/vfbroker/hook.json';
const MAX_BYTES = 64 * 1024;

export type HookSysfs =
  | { readonly root: string }
  | { readonly simulator: { readonly fixture: string; readonly stateFile: string } };

export interface HookSettings {
  readonly busAddress: string | null;
  readonly deadlineMs: number | null;
  readonly sysfs: HookSysfs;
}

const DEFAULTS: HookSettings = { busAddress: null, deadlineMs: null, sysfs: { root: '/sys' } };

export function readHookSettings(env: NodeJS.ProcessEnv = process.env): HookSettings {
  const file = env['VFBROKER_HOOK_SETTINGS'] || DEFAULT_SETTINGS_FILE;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT' && file === DEFAULT_SETTINGS_FILE) return DEFAULTS;
    throw invalid(file, 'cannot be read');
  }
  if (text.length > MAX_BYTES) throw invalid(file, 'is too large');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw invalid(file, 'is not valid JSON');
  }
  return parseHookSettings(raw, file);
}

export function parseHookSettings(raw: unknown, file: string): HookSettings {
  if (!isRecord(raw)) throw invalid(file, 'must hold a JSON object');
  const unknown = Object.keys(raw).filter((k) => !['busAddress', 'deadlineMs', 'sysfs'].includes(k));
  if (unknown.length > 0)
    throw invalid(file, `has unknown keys: ${unknown.map((k) => JSON.stringify(k.slice(0, 32))).join(', ')}`);
  const { busAddress, deadlineMs, sysfs } = raw;
  if (busAddress !== undefined && (typeof busAddress !== 'string' || !busAddress.startsWith('unix:path=/'))) {
    throw invalid(file, 'busAddress must be "unix:path=/…"');
  }
  if (
    deadlineMs !== undefined &&
    (!Number.isInteger(deadlineMs) || (deadlineMs as number) < 100 || (deadlineMs as number) > 120_000)
  ) {
    throw invalid(file, 'deadlineMs must be a whole number of milliseconds from 100 to 120000');
  }
  return {
    busAddress: busAddress ?? null,
    deadlineMs: (deadlineMs as number | undefined) ?? null,
    sysfs: sysfs === undefined ? DEFAULTS.sysfs : parseSysfs(sysfs, file),
  };
}

function parseSysfs(raw: unknown, file: string): HookSysfs {
  if (isRecord(raw) && Object.keys(raw).length === 1) {
    if (isAbsolutePath(raw['root'])) return { root: raw['root'] };
    const sim = raw['simulator'];
    if (
      isRecord(sim) &&
      Object.keys(sim).length === 2 &&
      isAbsolutePath(sim['fixture']) &&
      isAbsolutePath(sim['stateFile'])
    ) {
      return { simulator: { fixture: sim['fixture'], stateFile: sim['stateFile'] } };
    }
  }
  throw invalid(
    file,
    'sysfs must be {"root": "/abs/path"} or {"simulator": {"fixture": "/abs", "stateFile": "/abs"}}',
  );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isAbsolutePath(v: unknown): v is string {
  return typeof v === 'string' && v.startsWith('/') && v.length < 4096 && !v.includes('\0');
}

function invalid(file: string, why: string): VfbError {
  return new VfbError('CONFIG_INVALID', `${file} ${why}`, {
    hint: 'rewrite it with `vfbroker install`, or remove it to use the defaults',
  });
}
