/**
 * `vfbroker doctor`: why would this VF refuse to open? Runs every check over one environment and
 * returns the findings in a fixed order: the host (config, vfio-pci, kernel, QEMU, the libvirt hook,
 * broker, store),
 * then the devices of the target grouped by PF, then the guest's definition.
 */
import { toVfbError } from '../errors.js';
import { checkBroker, checkPfToken, checkStore } from './checks/broker.js';
import { checkConfig } from './checks/config.js';
import { checkHook } from './checks/hook.js';
import { checkGuestDefinition, checkGuestIommufd, checkGuestTokens } from './checks/guest.js';
import { checkKernelLog, checkKernelLogReadable } from './checks/kernel-log.js';
import { checkKernel } from './checks/kernel.js';
import { checkPfConfigured, checkPfDriver } from './checks/pf.js';
import { checkQemu } from './checks/qemu.js';
import { checkVfDrivers } from './checks/vf-driver.js';
import { checkVfioModule } from './checks/vfio-module.js';
import { gatherContext, type DoctorTarget } from './context.js';
import type { DoctorEnvironment } from './environment.js';
import { findings, type CheckId, type Finding } from './finding.js';
import { resolveScope } from './scope.js';

export interface DoctorReport {
  readonly target: DoctorTarget;
  readonly kernelRelease: string;
  readonly findings: readonly Finding[];
  /** Some finding failed: a VF would refuse to open, or a guest to start. */
  readonly failed: boolean;
}

type CheckResult = Finding | Finding[] | null;

export async function runDoctor(env: DoctorEnvironment, target: DoctorTarget): Promise<DoctorReport> {
  const ctx = await gatherContext(env, target);
  const out: Finding[] = [];
  // A check that cannot finish (sysfs unreadable, say) is reported as not done; the others still run.
  const run = async (
    id: CheckId,
    subject: string | null,
    check: () => CheckResult | Promise<CheckResult>,
  ) => {
    try {
      const result = await check();
      if (result !== null) out.push(...(Array.isArray(result) ? result : [result]));
    } catch (err) {
      const e = toVfbError(err);
      out.push(findings(id, subject)('skip', `could not check: ${e.message}`, '', e.hint));
    }
  };

  await run('config', null, () => checkConfig(ctx));
  await run('vfio-pci', null, () => checkVfioModule(ctx));
  await run('kernel', null, () => checkKernel(ctx));
  await run('qemu', null, () => checkQemu(ctx));
  await run('hook', null, () => checkHook(ctx));
  await run('broker', null, () => checkBroker(ctx));
  await run('store', null, () => checkStore(ctx));
  await run('kernel-log', null, () => checkKernelLogReadable(ctx));
  await run('guest-definition', null, () => checkGuestDefinition(ctx));
  const scope = await resolveScope(ctx).catch((err: unknown) => {
    out.push(
      findings('device', null)('skip', `could not find the devices to check: ${toVfbError(err).message}`),
    );
    return { groups: [], findings: [] };
  });
  out.push(...scope.findings);
  for (const group of scope.groups) {
    await run('pf-configured', group.pf, () => checkPfConfigured(ctx, group.pf));
    await run('pf-driver', group.pf, () => checkPfDriver(ctx, group.pf));
    await run('pf-token', group.pf, () => checkPfToken(ctx, group.pf));
    await run('vf-driver', group.pf, () => checkVfDrivers(ctx, group));
    await run('kernel-log', group.pf, () => checkKernelLog(ctx, group));
  }
  await run('guest-token', null, () => checkGuestTokens(ctx));
  await run('guest-iommufd', null, () => checkGuestIommufd(ctx));
  return {
    target,
    kernelRelease: ctx.kernel.release,
    findings: out,
    failed: out.some((f) => f.status === 'fail'),
  };
}
