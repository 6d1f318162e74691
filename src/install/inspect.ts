/**
 * Whether what `vfbroker install` puts in place for the libvirt hook is there: the hook, its
 * settings and its code-cache directory, each compared with the install plan exactly as
 * `vfbroker install --dry-run` compares it. `vfbroker doctor` reports the answer.
 */
import { dirname } from 'node:path';
import { DEFAULT_CODE_CACHE } from '../hooks/code-cache.js';
import { applyInstall } from './apply.js';
import { HOOK_PATH, HOOK_SETTINGS_PATH, planInstall, type PlanOptions } from './plan.js';

/** missing: install would write it; differs: install would update it; current: install leaves it. */
export type InstalledState = 'missing' | 'differs' | 'current';

export interface HookInstallation {
  readonly hook: InstalledState;
  readonly settings: InstalledState;
  readonly cacheDirectory: InstalledState;
}

export async function inspectHookInstallation(
  options: PlanOptions & { readonly root: string },
): Promise<HookInstallation> {
  const wanted = [HOOK_PATH, HOOK_SETTINGS_PATH, dirname(DEFAULT_CODE_CACHE)];
  const plan = (await planInstall(options)).filter((entry) => wanted.includes(entry.path));
  const { files } = await applyInstall(plan, options.root, true);
  const state = (path: string): InstalledState => {
    const outcome = files.find((f) => f.path === path)?.outcome;
    return outcome === 'written' ? 'missing' : outcome === 'updated' ? 'differs' : 'current';
  };
  return {
    hook: state(HOOK_PATH),
    settings: state(HOOK_SETTINGS_PATH),
    cacheDirectory: state(dirname(DEFAULT_CODE_CACHE)),
  };
}
