/**
 * Check `hook`: the libvirt hook `vfbroker install` writes is in place and is this vfbroker's, with
 * settings derived from this broker.yaml. Without it libvirt starts guests unchecked: nothing leases
 * their VFs, and a definition with a missing or stale vf-token fails inside QEMU instead of getting
 * a one-line reason before it starts.
 */
import { HOOK_PATH, HOOK_SETTINGS_PATH } from '../../install/plan.js';
import type { DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';

const INSTALL = 'vfbroker install';

export async function checkHook(ctx: DoctorContext): Promise<Finding> {
  const f = findings('hook', null);
  const installed = await ctx.env.hookInstallation();
  if (installed === null) {
    return f('skip', "broker.yaml names a simulated host: this host's libvirt is not its libvirt");
  }
  if (installed.hook === 'missing') {
    return f(
      'fail',
      `no libvirt hook at ${HOOK_PATH}`,
      'libvirt then starts guests unchecked: no VF is leased, and a guest whose definition carries a missing or stale vf-token fails inside QEMU ("VF token required to access device") instead of being refused with the reason',
      `${INSTALL}, then restart libvirt once (systemctl restart libvirtd, or virtqemud)`,
    );
  }
  if (installed.hook === 'differs') {
    return f(
      'warn',
      `the hook at ${HOOK_PATH} is not this vfbroker's`,
      'another version, or one installed with another node, checks guests the way that version did',
      INSTALL,
    );
  }
  if (installed.settings !== 'current') {
    return f(
      'warn',
      installed.settings === 'missing'
        ? `${HOOK_SETTINGS_PATH} is missing`
        : `${HOOK_SETTINGS_PATH} does not match ${ctx.configPath}`,
      'the hook finds the broker (bus address) and its deadline there',
      INSTALL,
    );
  }
  if (installed.cacheDirectory !== 'current') {
    return f(
      'warn',
      "the hook's code-cache directory /var/cache/vfbroker is missing or not 0700",
      'the hook then compiles itself on every guest start, a few milliseconds each',
      INSTALL,
    );
  }
  return f('ok', `the libvirt hook at ${HOOK_PATH} and its settings are this vfbroker's`);
}
