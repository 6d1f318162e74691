/**
 * Running the installed libvirt hook — the bundle scripts/build-hook.mjs makes, which `vfbroker
 * install` copies to /etc/libvirt/hooks/qemu.d/vfbroker — the way libvirt does (REFERENCE.md §4):
 * executed directly (its shebang names node), argv `<name> <op> <subop> <extra>`, the domain XML on
 * stdin, and only libvirt's environment: LC_ALL=C plus PATH, HOME, USER, LOGNAME and TMPDIR when
 * set. One addition points it at the demo's bus and simulated host instead of /etc/vfbroker/hook.json.
 * For a refused start it also renders what `virsh start` would print.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { VfbError } from '../errors.js';
import type { HookSysfs } from '../hooks/hook-settings.js';
import type { Workspace } from './workspace.js';

/** Where `vfbroker install` puts the hook, as libvirt names it in its messages. */
export const INSTALLED_HOOK = '/etc/libvirt/hooks/qemu.d/vfbroker';
/** The bundle, built next to the compiled code (dist/hook/). */
export const HOOK_BUNDLE = fileURLToPath(new URL('../../hook/vfbroker-qemu-hook.cjs', import.meta.url));
/** Names the hook's settings file in place of /etc/vfbroker/hook.json (src/hooks/hook-settings.ts). */
const SETTINGS_ENV = 'VFBROKER_HOOK_SETTINGS';
const PASSED_THROUGH = ['PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR'] as const;
/** The hook bounds itself (broker.yaml hook.brokerTimeoutMs); this only guards against a bug. */
const KILL_AFTER_MS = 30_000;

export type HookOp = 'prepare' | 'started' | 'stopped' | 'release';

const SUBOP: Readonly<Record<HookOp, string>> = {
  prepare: 'begin',
  started: 'begin',
  stopped: 'end',
  release: 'end',
};

export interface HookRun {
  /** The hook's arguments, as libvirt passes them. */
  readonly args: readonly string[];
  readonly exitCode: number;
  /** Its stderr, without the final newline. */
  readonly stderr: string;
  /** What `virsh start` prints when the hook refuses a start; null otherwise. */
  readonly libvirtError: readonly string[] | null;
}

/** Fails before anything starts when the bundle was not built. */
export async function checkHookBundle(): Promise<void> {
  try {
    await access(HOOK_BUNDLE, constants.X_OK);
  } catch {
    throw new VfbError('NOT_FOUND', `the libvirt hook bundle ${HOOK_BUNDLE} is missing`, {
      hint: '`npm run build` makes it (node scripts/build-hook.mjs)',
    });
  }
}

/** The settings `vfbroker install` would write to /etc/vfbroker/hook.json for this broker. */
export async function writeHookSettings(ws: Workspace, busAddress: string, sysfs: HookSysfs): Promise<void> {
  await writeFile(ws.hookSettings, JSON.stringify({ busAddress, sysfs }, null, 2) + '\n', { mode: 0o600 });
}

export async function runHook(
  ws: Workspace,
  guest: { readonly name: string; readonly xml: string },
  op: HookOp,
  extra = '-',
): Promise<HookRun> {
  const args = [guest.name, op, SUBOP[op], extra];
  const env: Record<string, string> = { LC_ALL: 'C' };
  for (const name of PASSED_THROUGH) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  const { exitCode, stderr } = await run(args, { ...env, [SETTINGS_ENV]: ws.hookSettings }, guest.xml);
  const refused = exitCode !== 0 && op === 'prepare';
  return { args, exitCode, stderr, libvirtError: refused ? libvirtError(env, args, exitCode, stderr) : null };
}

/** virsh's two lines for a hook that failed a start (libvirt's virCommandRun wording). */
function libvirtError(
  env: Readonly<Record<string, string>>,
  args: readonly string[],
  exitCode: number,
  stderr: string,
): string[] {
  const command = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), INSTALLED_HOOK, ...args].join(' ');
  return [
    `error: Failed to start domain '${args[0] ?? ''}'`,
    `error: Hook script execution failed: internal error: Child process (${command}) unexpected exit status ${exitCode}: ${stderr}`,
  ];
}

function run(
  args: readonly string[],
  env: Record<string, string>,
  stdin: string,
): Promise<{ exitCode: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(HOOK_BUNDLE, args, { env, stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new VfbError('UNAVAILABLE', `cannot run the hook: ${err.message}`, { cause: err }));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === null) {
        reject(new VfbError('INTERNAL', `the hook was killed by ${signal ?? 'a signal'}`));
        return;
      }
      resolve({ exitCode: code, stderr: stderr.trimEnd() });
    });
    child.stdin.on('error', () => {
      // EPIPE if the hook exits before reading all of stdin; its exit status tells the story.
    });
    child.stdin.end(stdin);
  });
}
