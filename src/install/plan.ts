/**
 * What `vfbroker install` puts on a host, as data: every file with its path, mode and content, and
 * whether an existing copy is replaced (files vfbroker owns) or kept (the operator's configuration);
 * and the directories vfbroker's programs write to but do not create themselves.
 * Plan, then apply: `--dry-run` prints the plan, and applying twice changes nothing.
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrokerConfig } from '../config/broker-config.js';
import { VfbError } from '../errors.js';
import { packageFile } from '../package-root.js';
import { DEFAULT_CODE_CACHE } from '../hooks/code-cache.js';
import { MODPROBE_CONF } from '../plugins/lifecycle/vfio.js';

export interface InstallFile {
  readonly kind: 'file';
  /** Absolute path on the target system (the --root is prepended when applying). */
  readonly path: string;
  readonly mode: number;
  readonly content: string;
  /** replace: vfbroker's own file, kept current; keep: configuration, written only when absent. */
  readonly existing: 'replace' | 'keep';
  readonly why: string;
}

export interface InstallDirectory {
  readonly kind: 'directory';
  readonly path: string;
  readonly mode: number;
  readonly why: string;
}

export type InstallEntry = InstallFile | InstallDirectory;

export const HOOK_PATH = '/etc/libvirt/hooks/qemu.d/vfbroker';
export const HOOK_SETTINGS_PATH = '/etc/vfbroker/hook.json';

/** The compiled tree this file runs from (dist/ when installed): the CLI and the hook bundle. */
const BUILD_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface PlanOptions {
  /** The broker configuration the hook settings are derived from; null when none exists yet. */
  readonly config: BrokerConfig | null;
  /** node's absolute path, for the hook's shebang and the unit's ExecStart. */
  readonly node: string;
}

export async function planInstall(options: PlanOptions): Promise<InstallEntry[]> {
  const shipped = (rel: string) => readFile(packageFile(rel), 'utf8');
  const hook = await readFile(join(BUILD_ROOT, 'hook', 'vfbroker-qemu-hook.cjs'), 'utf8').catch(() => {
    throw new VfbError('NOT_FOUND', `the hook bundle is missing from ${BUILD_ROOT}hook/`, {
      hint: 'run `npm run build` first',
    });
  });
  const cli = join(BUILD_ROOT, 'src', 'cli', 'main.js');
  const unit = (await shipped('etc/systemd/system/vfbroker.service')).replace(
    /^ExecStart=.*$/m,
    `ExecStart=${options.node} ${cli} serve`,
  );
  const hookSettings = {
    ...(options.config?.dbus.busAddress ? { busAddress: options.config.dbus.busAddress } : {}),
    deadlineMs: options.config?.hook.brokerTimeoutMs ?? 5000,
    ...(options.config?.sysfs.type === 'root' && options.config.sysfs.root !== '/sys'
      ? { sysfs: { root: options.config.sysfs.root } }
      : {}),
  };
  const file = (entry: Omit<InstallFile, 'kind'>): InstallFile => ({ kind: 'file', ...entry });
  return [
    file({
      path: HOOK_PATH,
      mode: 0o755,
      // libvirt passes hooks almost no environment: node is named by its absolute path.
      content: hook.replace(/^#!.*\n/, `#!${options.node}\n`),
      existing: 'replace',
      why: 'the libvirt qemu hook that gates every guest start',
    }),
    file({
      path: HOOK_SETTINGS_PATH,
      mode: 0o644,
      content: JSON.stringify(hookSettings, null, 2) + '\n',
      existing: 'replace',
      why: 'where the hook finds the broker (from broker.yaml)',
    }),
    file({
      path: '/usr/share/dbus-1/system.d/org.vfbroker.Broker1.conf',
      mode: 0o644,
      content: await shipped('etc/dbus-1/system.d/org.vfbroker.Broker1.conf'),
      existing: 'replace',
      why: 'the bus policy: only root owns org.vfbroker.Broker1',
    }),
    file({
      path: '/usr/share/dbus-1/system-services/org.vfbroker.Broker1.service',
      mode: 0o644,
      content: await shipped('etc/dbus-1/system-services/org.vfbroker.Broker1.service'),
      existing: 'replace',
      why: 'D-Bus activation through systemd',
    }),
    file({
      path: '/etc/systemd/system/vfbroker.service',
      mode: 0o644,
      content: unit,
      existing: 'replace',
      why: 'the hardened broker service',
    }),
    file({
      path: MODPROBE_CONF,
      mode: 0o644,
      content:
        '# vfbroker: PFs driven from userspace need vfio-pci to allow SR-IOV.\noptions vfio-pci enable_sriov=1\n',
      existing: 'keep',
      why: 'vfio-pci with enable_sriov=1 at every load',
    }),
    file({
      path: '/etc/modules-load.d/vfbroker.conf',
      mode: 0o644,
      content: '# vfbroker: load vfio-pci at boot, before the broker brings PFs up.\nvfio-pci\n',
      existing: 'keep',
      why: 'vfio-pci loaded at boot',
    }),
    file({
      path: '/etc/vfbroker/broker.yaml',
      mode: 0o644,
      content: await shipped('etc/vfbroker/broker.yaml'),
      existing: 'keep',
      why: 'an example broker configuration to edit',
    }),
    file({
      path: '/etc/vfbroker/policy.yaml',
      mode: 0o644,
      content: await shipped('etc/vfbroker/policy.yaml'),
      existing: 'keep',
      why: 'an example policy to edit (default deny)',
    }),
    {
      kind: 'directory',
      path: dirname(DEFAULT_CODE_CACHE),
      mode: 0o700,
      why: 'where the hook keeps its compiled code between guest starts',
    },
  ];
}
