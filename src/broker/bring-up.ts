/**
 * Brings the configured PFs up at broker start: choose each PF's plugin, make sure the store has a
 * token for it (creating generation 1 the first time), and run the plugin's life cycle with it. A
 * PF that fails is marked degraded with a one-line reason and the others still come up: one broken
 * card must not take the VFs of every other card down with it.
 */
import { ManagedPfs, pluginPfConfig, type ManagedPf } from './managed-pfs.js';
import type { TokenCache } from './store/token-cache.js';
import type { PfTokens, TokenStore } from './store/token-store.js';
import type { PfConfig as PfEntry } from '../config/broker-config.js';
import { isVfbError, toVfbError } from '../errors.js';
import type { Logger } from '../log.js';
import type { PciAddress } from '../pci/address.js';
import type { PluginContext } from '../plugins/contract.js';
import { checkDriverctl } from '../driverctl/conflicts.js';
import { pfUp } from '../plugins/lifecycle/pf.js';
import type { PfPlan } from '../plugins/plan.js';
import { describeUnprotectedVf } from '../plugins/status.js';
import type { PluginRegistry } from '../plugins/registry.js';

export interface BringUpDeps {
  readonly registry: PluginRegistry;
  readonly context: PluginContext;
  readonly store: TokenStore;
  readonly tokens: TokenCache;
  readonly logger: Logger;
  /** Where driverctl keeps its persistent overrides; null: none to honour (a simulated host). */
  readonly driverctlDirectory: string | null;
}

/**
 * Chooses a plugin for every configured PF. A PF whose plugin cannot be chosen (the device is
 * missing, or nothing handles it) is left out with an error in the log; a plugin name that does not
 * exist is a configuration error and stops the broker.
 */
export async function selectPlugins(entries: readonly PfEntry[], deps: BringUpDeps): Promise<ManagedPfs> {
  const pfs = new ManagedPfs();
  for (const entry of entries) {
    try {
      const { plugin, reason } = await deps.registry.select(deps.context.sysfs, pluginPfConfig(entry));
      pfs.add({
        entry,
        plugin,
        pluginReason: reason,
        wantedVfs: entry.vfs,
        state: 'down',
        lastError: null,
        vfs: [],
      });
    } catch (err) {
      if (isVfbError(err, 'CONFIG_INVALID') || (isVfbError(err, 'NOT_FOUND') && entry.plugin !== null))
        throw err;
      deps.logger.error({ err, pf: entry.address }, 'PF left out: no plugin for it');
    }
  }
  return pfs;
}

export async function bringUp(pfs: ManagedPfs, deps: BringUpDeps): Promise<void> {
  for (const managed of pfs.all()) {
    await bringUpOne(pfs, managed, deps);
  }
}

export async function bringUpOne(pfs: ManagedPfs, managed: ManagedPf, deps: BringUpDeps): Promise<void> {
  const pf = managed.entry.address;
  try {
    const token = managed.plugin.manifest.needsToken ? (await ensureToken(pf, deps)).active.token : null;
    const { status } = await pfUp(
      deps.context,
      managed.plugin,
      pluginPfConfig(managed.entry, managed.wantedVfs),
      token,
      {
        dryRun: false,
        check: planCheck(managed, deps),
      },
    );
    managed.state = 'up';
    managed.lastError = null;
    for (const vf of status?.outsideTokenProtection ?? []) {
      deps.logger.warn(
        { audit: true, event: 'vf-outside-token-protection', pf, vf: vf.address, driver: vf.driver },
        describeUnprotectedVf(vf),
      );
    }
  } catch (err) {
    managed.state = 'degraded';
    managed.lastError = toVfbError(err).message;
    deps.logger.error({ err, pf, plugin: managed.plugin.manifest.name }, 'PF did not come up');
  }
  await pfs
    .refreshVfs(deps.context.sysfs, pf)
    .catch((err: unknown) => deps.logger.warn({ err, pf }, 'cannot read the PF’s VFs'));
}

/** What every plan of this PF must pass before anything changes: no conflict with driverctl's overrides. */
export function planCheck(
  managed: ManagedPf,
  deps: Pick<BringUpDeps, 'context' | 'driverctlDirectory'>,
): (plan: PfPlan) => Promise<void> {
  return (plan) => checkDriverctl(plan, managed.entry, deps.context.sysfs, deps.driverctlDirectory);
}

/** The PF's tokens, creating generation 1 when the store has none; a racing creator's wins. */
export async function ensureToken(
  pf: PciAddress,
  deps: Pick<BringUpDeps, 'store' | 'tokens'>,
): Promise<PfTokens> {
  try {
    return await deps.tokens.get(pf);
  } catch (err) {
    if (!isVfbError(err, 'NOT_FOUND')) throw err;
  }
  try {
    const created = await deps.store.create(pf);
    deps.tokens.set(created);
    return created;
  } catch (err) {
    if (!isVfbError(err, 'CONFLICT')) throw err;
    deps.tokens.invalidate(pf);
    return deps.tokens.get(pf);
  }
}
