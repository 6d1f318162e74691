/**
 * What commands that work without the broker read themselves: broker.yaml's sysfs (the host or a
 * simulated one) and policy.yaml, and where VFs sit on the host.
 */
import type { Command } from 'commander';
import { globals } from './context.js';
import type { VfLocator } from '../broker/policy/decide.js';
import { loadBrokerConfig } from '../config/broker-config.js';
import { loadPolicyConfig, type Policy } from '../config/policy-config.js';
import type { PciAddress } from '../pci/address.js';
import { openSysfs } from '../sysfs/open.js';
import type { Sysfs } from '../sysfs/sysfs.js';

export async function hostSysfs(cmd: Command): Promise<Sysfs> {
  return openSysfs((await loadBrokerConfig(globals(cmd).config)).sysfs);
}

export function policyOf(cmd: Command): Promise<Policy> {
  return loadPolicyConfig(globals(cmd).policy);
}

/** Where each VF sits (its PF and index), read from sysfs once: the policy's locator is synchronous. */
export async function locateVfs(sysfs: Sysfs, vfs: readonly PciAddress[]): Promise<VfLocator> {
  const found = new Map<PciAddress, { pf: PciAddress; index: number }>();
  for (const vf of vfs) {
    const pf = await sysfs.physfn(vf);
    const index = pf === null ? -1 : (await sysfs.virtfns(pf)).indexOf(vf);
    if (pf !== null && index >= 0) found.set(vf, { pf, index });
  }
  return (vf) => found.get(vf) ?? null;
}
