/**
 * The PF life cycle as the broker and the CLI call it, for any plugin (built-in or external). The
 * checks that must not depend on each plugin getting them right live here: the token is present
 * exactly when the plugin needs one and is a UUID, the rotation mode matches, an `up` really ended
 * up, and every log line is stamped with the plugin and the PF.
 */
import { VfbError } from '../../errors.js';
import type { DownOptions, PfConfig, Plugin, PluginContext } from '../contract.js';
import type { PfPlan } from '../plan.js';
import { describeUnprotectedVf, type PfStatus } from '../status.js';
import { assertToken } from '../token.js';

export interface UpOptions {
  /** Plan only: nothing changes, the result carries the plan and no status. */
  readonly dryRun: boolean;
  /**
   * Runs on the plan before anything changes, on a dry run too; throwing stops the up. The broker
   * passes src/driverctl's check here: the plan knows the drivers, the broker the config file.
   */
  readonly check?: (plan: PfPlan) => Promise<void>;
}

export interface UpResult {
  readonly plan: PfPlan;
  /** The status after applying; null on a dry run. */
  readonly status: PfStatus | null;
}

export async function pfUp(
  ctx: PluginContext,
  plugin: Plugin,
  pf: PfConfig,
  token: string | null,
  options: UpOptions,
): Promise<UpResult> {
  const pctx = stamped(ctx, plugin, pf);
  const plan = await plugin.plan(pctx, pf);
  if (options.check) await options.check(plan);
  if (options.dryRun) return { plan, status: null };
  checkTokenFor(plugin, pf, token);
  await plugin.apply(pctx, plan, token);
  const status = await plugin.status(pctx, pf);
  const pending = status.steps.find((s) => !s.done);
  if (pending) {
    throw new VfbError(
      'CONFLICT',
      `PF ${pf.address} is not up after applying its plan: ${pending.step}: ${pending.detail}`,
      {
        hint: 'something changed the PF meanwhile; run `vfbroker pf up` again (`vfbroker pf status` shows each step)',
      },
    );
  }
  pctx.logger.info(`PF is up with ${pf.vfs} VFs`);
  for (const vf of status.outsideTokenProtection)
    pctx.logger.warn({ vf: vf.address, index: vf.index, driver: vf.driver }, describeUnprotectedVf(vf));
  return { plan, status };
}

export async function pfDown(
  ctx: PluginContext,
  plugin: Plugin,
  pf: PfConfig,
  options: DownOptions = { release: false },
): Promise<PfStatus> {
  const pctx = stamped(ctx, plugin, pf);
  await plugin.down(pctx, pf, options);
  pctx.logger.info('PF is down');
  return plugin.status(pctx, pf);
}

export function pfStatus(ctx: PluginContext, plugin: Plugin, pf: PfConfig): Promise<PfStatus> {
  return plugin.status(stamped(ctx, plugin, pf), pf);
}

/** Live rotation: the running PF driver replaces its token; open VFs keep working. */
export async function rotateLive(
  ctx: PluginContext,
  plugin: Plugin,
  pf: PfConfig,
  newToken: string,
): Promise<void> {
  if (plugin.manifest.rotation !== 'live' || !plugin.setToken) throw wrongMode(plugin, pf, 'live');
  assertToken(pf.address, newToken);
  await plugin.setToken(stamped(ctx, plugin, pf), pf, newToken);
}

/** Drain rotation: restarts the PF driver with the new token. The caller has drained the PF's VFs. */
export async function restartDriver(
  ctx: PluginContext,
  plugin: Plugin,
  pf: PfConfig,
  newToken: string,
): Promise<void> {
  if (plugin.manifest.rotation !== 'drain' || !plugin.restartDriver) throw wrongMode(plugin, pf, 'drain');
  assertToken(pf.address, newToken);
  await plugin.restartDriver(stamped(ctx, plugin, pf), pf, newToken);
}

function checkTokenFor(plugin: Plugin, pf: PfConfig, token: string | null): void {
  if (token === null) {
    if (plugin.manifest.needsToken)
      throw new VfbError(
        'INVALID_ARGUMENT',
        `PF ${pf.address} (plugin ${plugin.manifest.name}) needs a token`,
      );
    return;
  }
  if (!plugin.manifest.needsToken) {
    throw new VfbError(
      'INVALID_ARGUMENT',
      `PF ${pf.address} (plugin ${plugin.manifest.name}) takes no token: its VFs open without one`,
    );
  }
  assertToken(pf.address, token);
}

function wrongMode(plugin: Plugin, pf: PfConfig, wanted: 'live' | 'drain'): VfbError {
  return new VfbError(
    'INVALID_ARGUMENT',
    `PF ${pf.address}: plugin ${plugin.manifest.name} rotates by ${plugin.manifest.rotation}, not ${wanted}`,
  );
}

function stamped(ctx: PluginContext, plugin: Plugin, pf: PfConfig): PluginContext {
  return { ...ctx, logger: ctx.logger.child({ plugin: plugin.manifest.name, pf: pf.address }) };
}
