/**
 * The shared PF life cycle. `lifecyclePlugin(spec)` turns a device description (spec.ts) into a
 * Plugin: plan from one observation of sysfs and the driver, apply step by step with each step
 * re-checking the state first (so every step is idempotent and a half-done `up` is finished by the
 * next one), status as a list of steps done, and down in reverse.
 *
 * Order of an `up`: stop a driver that must go → remove VFs that must go → bind the PF → device
 * steps that need no VFs → start a driver that comes before the VFs → enable VFs → device steps
 * on the VFs → bind VFs (opted-in VFs to their own driver, vf-drivers.ts) → start a driver that
 * needs the VFs.
 */
import { VfbError } from '../../errors.js';
import type { DownOptions, PfConfig, Plugin, PluginContext } from '../contract.js';
import { parsePluginOptions } from '../options.js';
import { describeStep, type PfPlan, type PlannedBindings, type PlanStep } from '../plan.js';
import type { PfStatus, StepStatus, VfStatus } from '../status.js';
import { bindDevice, releaseDevice } from './binding.js';
import { checkVfCount } from './limits.js';
import { setNumVfs } from './numvfs.js';
import { observePf, readDeviceId, type PfObservation } from './observe.js';
import { refuseOpenVfs } from './open-vfs.js';
import type { DeviceStep, LifecycleSpec, PfDriverSpec, PfLayout, PfTarget, StepCheck } from './spec.js';
import { plannedVfs, unprotectedVfs, vfBindSteps, vfsBound } from './vf-drivers.js';
import { checkVfio, VFIO_PCI } from './vfio.js';

export function lifecyclePlugin<O>(spec: LifecycleSpec<O>): Plugin {
  const driver = spec.driver;
  const plugin: Plugin = {
    manifest: spec.manifest,
    plan: (ctx, pf) => planUp(spec, ctx, pf),
    apply: (ctx, plan, token) => applyPlan(spec, ctx, plan, token),
    status: (ctx, pf) => readStatus(spec, ctx, pf),
    down: (ctx, pf, options) => bringDown(spec, ctx, pf, options),
    close: () => driver?.close() ?? Promise.resolve(),
  };
  if (driver?.setToken) {
    const setToken = driver.setToken.bind(driver);
    plugin.setToken = async (ctx, pf, token) => {
      const target = await resolveTarget(spec, ctx, pf);
      await requireRunning(driver, ctx, target);
      await setToken(ctx, target, token);
    };
  }
  if (driver && spec.manifest.rotation === 'drain') {
    plugin.restartDriver = async (ctx, pf, token) => {
      const target = await resolveTarget(spec, ctx, pf);
      await driver.stop(ctx, target);
      await driver.start(ctx, target, token);
    };
  }
  return plugin;
}

async function resolveTarget<O>(
  spec: LifecycleSpec<O>,
  ctx: PluginContext,
  pf: PfConfig,
): Promise<PfTarget<O>> {
  const deviceId = await readDeviceId(ctx.sysfs, pf.address);
  const { name, ids } = spec.manifest;
  if (ids.length > 0 && !ids.includes(deviceId)) {
    throw new VfbError(
      'INVALID_ARGUMENT',
      `plugin ${name} does not handle PF ${pf.address} (${deviceId}); it handles ${ids.join(', ')}`,
      {
        hint: `check plugin: for PF ${pf.address} in /etc/vfbroker/broker.yaml`,
      },
    );
  }
  const options = parsePluginOptions(name, pf, spec.options);
  return { address: pf.address, deviceId, vfs: pf.vfs, options };
}

interface Observed<O> {
  readonly target: PfTarget<O>;
  readonly layout: PfLayout;
  readonly pf: PfObservation;
  readonly steps: readonly DeviceStep<O>[];
  readonly checks: readonly StepCheck[];
  readonly driverRunning: boolean;
}

async function observe<O>(
  spec: LifecycleSpec<O>,
  ctx: PluginContext,
  target: PfTarget<O>,
): Promise<Observed<O>> {
  const layout = spec.layout(target);
  const pf = await observePf(ctx.sysfs, target.address);
  const steps = spec.deviceSteps?.(target) ?? [];
  const checks: StepCheck[] = [];
  // One after the other: device steps run commands, and their order is the order of the plan.
  for (const step of steps) checks.push(await step.check(ctx, target));
  const driverRunning = spec.driver ? (await spec.driver.state(ctx, target)).running : false;
  return { target, layout, pf, steps, checks, driverRunning };
}

async function planUp<O>(spec: LifecycleSpec<O>, ctx: PluginContext, config: PfConfig): Promise<PfPlan> {
  const target = await resolveTarget(spec, ctx, config);
  const notes = spec.preflight ? await spec.preflight(ctx, target) : [];
  const o = await observe(spec, ctx, target);
  checkVfCount(target.address, target.deviceId, target.vfs, o.pf.totalVfs, o.layout.vfLimit, {
    pfLeavesDriver: o.pf.driver !== null && o.pf.driver !== o.layout.pfDriver,
  });
  if (o.layout.pfDriver === VFIO_PCI) await checkVfio(ctx.sysfs, target.address, o.layout.vfioParameters);

  const { pf, layout } = o;
  const driver = spec.driver;
  const rebind = pf.driver !== layout.pfDriver;
  const blocking = o.steps.find((s, i) => s.phase === 'before-vfs' && s.needsNoVfs && !o.checks[i]?.done);
  const removeReason = rebind
    ? `the PF moves from ${pf.driver ?? 'no driver'} to ${layout.pfDriver}`
    : pf.numVfs !== target.vfs
      ? `the count changes from ${pf.numVfs} to ${target.vfs} and the kernel needs 0 in between`
      : pf.vfs.length !== pf.numVfs
        ? `only ${pf.vfs.length} of them appeared, so they are created again`
        : blocking
          ? `${blocking.name} can only change without VFs`
          : null;
  const removeVfs = pf.numVfs > 0 && removeReason !== null;
  const stopDriver = o.driverRunning && (rebind || (removeVfs && driver?.starts === 'after-vfs'));
  const startDriver = driver !== null && (!o.driverRunning || stopDriver);
  const enableVfs = target.vfs > 0 && (removeVfs || pf.numVfs === 0);

  const steps: PlanStep[] = [];
  if (stopDriver && driver) {
    steps.push({
      kind: 'stop-driver',
      driver: driver.describe(target),
      reason: rebind ? 'the PF is rebound' : 'its VFs are replaced',
    });
  }
  if (removeVfs) steps.push({ kind: 'remove-vfs', count: pf.numVfs, reason: removeReason });
  if (rebind) steps.push({ kind: 'bind-pf', from: pf.driver, to: layout.pfDriver });
  steps.push(...deviceChanges(o, 'before-vfs', enableVfs));
  if (startDriver && driver?.starts === 'before-vfs')
    steps.push({ kind: 'start-driver', driver: driver.describe(target) });
  if (enableVfs) steps.push({ kind: 'enable-vfs', count: target.vfs });
  steps.push(...deviceChanges(o, 'after-vfs', enableVfs));
  const planned = plannedVfs(layout, config, target.vfs);
  const binds = vfBindSteps(planned, layout, pf, enableVfs);
  steps.push(...binds);
  if (startDriver && driver?.starts === 'after-vfs')
    steps.push({ kind: 'start-driver', driver: driver.describe(target) });

  // Removing or unbinding a VF that a process holds open through VFIO would wait for that process:
  // refused here, before anything changes (the broker's SetNumVfs plans first, as a dry run).
  if (removeVfs) {
    await refuseOpenVfs(ctx.sysfs, target.address, pf.vfs, `remove its ${pf.numVfs} VFs (${removeReason})`);
  } else {
    await refuseOpenVfs(ctx.sysfs, target.address, rebound(binds, pf.vfs), 'move VFs to another driver');
  }

  // A guest holding a VF on vfio-pci would lose it (and the unbind would wait for the guest).
  const leaving = binds.find(
    (s) => s.kind === 'bind-vf' && s.address !== null && pf.vfs[s.index]?.driver === VFIO_PCI,
  );
  const drainReason = removeVfs
    ? `its ${pf.numVfs} VFs are removed (${removeReason})`
    : stopDriver
      ? 'the PF driver is stopped'
      : leaving?.kind === 'bind-vf'
        ? `VF ${leaving.index} moves from ${VFIO_PCI} to ${leaving.driver}`
        : null;
  const bindings: PlannedBindings = { pf: layout.pfDriver, vfs: planned };
  return Object.freeze({
    plugin: spec.manifest.name,
    pf: target.address,
    deviceId: target.deviceId,
    config,
    needsToken: spec.manifest.needsToken,
    steps: Object.freeze(steps),
    bindings,
    drain: { required: drainReason !== null, reason: drainReason },
    notes: Object.freeze([...notes]),
  });
}

/** The VFs that bind steps take from a driver they are bound to now. */
function rebound(steps: readonly PlanStep[], vfs: readonly VfStatus[]): VfStatus[] {
  const moved = new Set<string>();
  for (const s of steps) {
    if (s.kind === 'bind-vfs') s.addresses.forEach((a) => moved.add(a));
    else if (s.kind === 'bind-vf' && s.address !== null) moved.add(s.address);
  }
  return vfs.filter((vf) => vf.driver !== null && moved.has(vf.address));
}

/** Device steps of one phase that the plan must list; all of them when the VFs are created anew. */
function deviceChanges<O>(
  o: Observed<O>,
  phase: 'before-vfs' | 'after-vfs',
  vfsRecreated: boolean,
): PlanStep[] {
  return o.steps.flatMap((step, i): PlanStep[] => {
    if (step.phase !== phase) return [];
    const check = o.checks[i];
    if (phase === 'after-vfs' && vfsRecreated)
      return [{ kind: 'device', name: step.name, change: step.describe(o.target) }];
    return check && !check.done ? [{ kind: 'device', name: step.name, change: check.change }] : [];
  });
}

async function applyPlan<O>(
  spec: LifecycleSpec<O>,
  ctx: PluginContext,
  plan: PfPlan,
  token: string | null,
): Promise<void> {
  if (plan.plugin !== spec.manifest.name) {
    throw new VfbError(
      'INTERNAL',
      `plugin ${spec.manifest.name} was given a plan made by plugin ${plan.plugin}`,
    );
  }
  const target = await resolveTarget(spec, ctx, plan.config);
  const layout = spec.layout(target);
  const steps = spec.deviceSteps?.(target) ?? [];
  for (const step of plan.steps) {
    ctx.logger.info({ step: step.kind }, describeStep(step));
    await applyStep(spec, ctx, target, layout, plan.bindings, steps, step, token);
  }
}

async function applyStep<O>(
  spec: LifecycleSpec<O>,
  ctx: PluginContext,
  target: PfTarget<O>,
  layout: PfLayout,
  bindings: PlannedBindings,
  deviceSteps: readonly DeviceStep<O>[],
  step: PlanStep,
  token: string | null,
): Promise<void> {
  const { sysfs } = ctx;
  switch (step.kind) {
    case 'stop-driver':
      return spec.driver?.stop(ctx, target);
    case 'remove-vfs':
      await setNumVfs(sysfs, target.address, 0);
      return;
    case 'bind-pf':
      return bindDevice(sysfs, target.address, layout.pfDriver);
    case 'device': {
      const device = deviceSteps.find((s) => s.name === step.name);
      if (!device) throw new VfbError('INTERNAL', `plugin ${spec.manifest.name} has no step ${step.name}`);
      if (!(await device.check(ctx, target)).done) await device.apply(ctx, target);
      return;
    }
    case 'enable-vfs':
      await setNumVfs(sysfs, target.address, step.count);
      return;
    case 'bind-vfs': {
      const vfs =
        step.addresses.length > 0
          ? step.addresses
          : (await sysfs.virtfns(target.address)).filter((_, i) => bindings.vfs[i]?.optedIn !== true);
      for (const vf of vfs) await bindDevice(sysfs, vf, step.driver);
      return;
    }
    case 'bind-vf': {
      const vf = step.address ?? (await sysfs.virtfns(target.address))[step.index];
      if (vf === undefined) {
        throw new VfbError(
          'CONFLICT',
          `PF ${target.address} has no VF ${step.index} to bind to ${step.driver}`,
          {
            hint: 'something removed its VFs meanwhile; run `vfbroker pf up` again',
          },
        );
      }
      return bindDevice(sysfs, vf, step.driver);
    }
    case 'start-driver': {
      const driver = spec.driver;
      if (!driver || (await driver.state(ctx, target)).running) return;
      if (token === null) {
        throw new VfbError(
          'INVALID_ARGUMENT',
          `PF ${target.address} needs a token to start its driver (plugin ${spec.manifest.name})`,
        );
      }
      return driver.start(ctx, target, token);
    }
  }
}

async function readStatus<O>(
  spec: LifecycleSpec<O>,
  ctx: PluginContext,
  config: PfConfig,
): Promise<PfStatus> {
  const base = { plugin: spec.manifest.name, pf: config.address, wantedVfs: config.vfs };
  if (!(await ctx.sysfs.exists(config.address))) {
    return {
      ...base,
      deviceId: null,
      state: 'down',
      pfDriver: null,
      vfs: [],
      steps: [{ step: 'pf-bound', done: false, detail: `PF not present (${ctx.sysfs.description})` }],
      outsideTokenProtection: [],
      driver: null,
    };
  }
  const target = await resolveTarget(spec, ctx, config);
  const o = await observe(spec, ctx, target);
  const { pf, layout } = o;
  const deviceStatus = (phase: 'before-vfs' | 'after-vfs'): StepStatus[] =>
    o.steps.flatMap((s, i) =>
      s.phase === phase
        ? [{ step: s.name, done: o.checks[i]?.done ?? false, detail: o.checks[i]?.detail ?? '' }]
        : [],
    );

  const steps: StepStatus[] = [
    {
      step: 'pf-bound',
      done: pf.driver === layout.pfDriver,
      detail:
        pf.driver === layout.pfDriver
          ? `bound to ${pf.driver}`
          : `${pf.driver ? `bound to ${pf.driver}` : 'unbound'}, wanted ${layout.pfDriver}`,
    },
    ...deviceStatus('before-vfs'),
    {
      step: 'vfs-enabled',
      done: pf.numVfs === target.vfs && pf.vfs.length === target.vfs,
      detail: `sriov_numvfs ${pf.numVfs} of ${target.vfs} wanted${pf.vfs.length === pf.numVfs ? '' : `, ${pf.vfs.length} VFs present`}`,
    },
    ...deviceStatus('after-vfs'),
  ];
  const planned = plannedVfs(layout, config, target.vfs);
  if (layout.vfDriver !== null || planned.some((vf) => vf.optedIn)) {
    const bound = vfsBound(planned, layout, pf.vfs);
    steps.push({ step: 'vfs-bound', done: bound.done && pf.vfs.length === target.vfs, detail: bound.detail });
  }
  const driverState = spec.driver ? await spec.driver.state(ctx, target) : null;
  if (spec.driver && driverState)
    steps.push({ step: 'driver-running', done: driverState.running, detail: driverState.detail });

  const allDone = steps.every((s) => s.done);
  return {
    ...base,
    deviceId: target.deviceId,
    state: allDone ? 'up' : pf.numVfs === 0 && !(driverState?.running ?? false) ? 'down' : 'degraded',
    pfDriver: pf.driver,
    vfs: pf.vfs,
    steps,
    outsideTokenProtection: pf.driver === VFIO_PCI ? unprotectedVfs(planned, pf.vfs) : [],
    driver: spec.driver && driverState ? { name: spec.driver.describe(target), ...driverState } : null,
  };
}

async function bringDown<O>(
  spec: LifecycleSpec<O>,
  ctx: PluginContext,
  config: PfConfig,
  options: DownOptions,
): Promise<void> {
  if (!(await ctx.sysfs.exists(config.address))) return;
  const target = await resolveTarget(spec, ctx, config);
  const layout = spec.layout(target);
  const pf = await observePf(ctx.sysfs, target.address);
  // Before the PF driver stops: a refused down leaves the PF as it was.
  await refuseOpenVfs(ctx.sysfs, target.address, pf.vfs, `remove its ${pf.numVfs} VFs`);
  await spec.driver?.stop(ctx, target);
  if (pf.numVfs > 0) {
    ctx.logger.info(`removing ${pf.numVfs} VFs`);
    await setNumVfs(ctx.sysfs, target.address, 0);
  }
  if (options.release && layout.pfDriver === VFIO_PCI) {
    ctx.logger.info('giving the PF back to the host');
    await releaseDevice(ctx.sysfs, target.address, VFIO_PCI);
  }
}

async function requireRunning<O>(
  driver: PfDriverSpec<O>,
  ctx: PluginContext,
  target: PfTarget<O>,
): Promise<void> {
  const state = await driver.state(ctx, target);
  if (!state.running) {
    throw new VfbError('UNAVAILABLE', `the PF driver of ${target.address} is not running (${state.detail})`, {
      hint: '`vfbroker pf up` starts it',
    });
  }
}
