/**
 * Lookup tables over a resolved policy, so that a decision looks at the few rules that name its
 * consumer instead of scanning all of them: hosts with hundreds of guests have policies with
 * hundreds of rules, and PrepareGuest asks once per device on every VM start.
 *
 * Built once per Policy object (policies are frozen, so the tables cannot go stale) and kept in a
 * WeakMap, which lets the decision functions stay plain functions of the policy.
 */
import type { GrantRule, OwnerRule, Policy, VfRange } from '../../config/policy-config.js';
import type { PciAddress } from '../../pci/address.js';

/** A grant rule with its VFs in sets, for membership tests. */
export interface CompiledGrant {
  readonly rule: GrantRule;
  readonly vfs: ReadonlySet<PciAddress>;
  readonly ranges: ReadonlyMap<PciAddress, readonly VfRange[]>;
}

export interface PolicyIndex {
  readonly guests: ReadonlyMap<string, readonly CompiledGrant[]>;
  /**
   * Each application rule is filed under one of its selectors, the most specific it has (uid,
   * then unit, then gid); a caller's candidates are the rules filed under its uid, its unit and
   * each of its gids, and every candidate is then checked against all of its selectors.
   */
  readonly appsByUid: ReadonlyMap<number, readonly CompiledGrant[]>;
  readonly appsByUnit: ReadonlyMap<string, readonly CompiledGrant[]>;
  readonly appsByGid: ReadonlyMap<number, readonly CompiledGrant[]>;
  readonly ownersByPf: ReadonlyMap<PciAddress, readonly OwnerRule[]>;
}

const cache = new WeakMap<Policy, PolicyIndex>();

export function indexPolicy(policy: Policy): PolicyIndex {
  let index = cache.get(policy);
  if (index === undefined) {
    index = build(policy);
    cache.set(policy, index);
  }
  return index;
}

function build(policy: Policy): PolicyIndex {
  const guests = new Map<string, CompiledGrant[]>();
  const appsByUid = new Map<number, CompiledGrant[]>();
  const appsByUnit = new Map<string, CompiledGrant[]>();
  const appsByGid = new Map<number, CompiledGrant[]>();
  // Rules are visited in order, so every list below is in rule order and its first match is the
  // lowest-numbered rule.
  for (const rule of policy.rules) {
    const compiled = compile(rule);
    const s = rule.subject;
    if (s.kind === 'guest') add(guests, s.uuid, compiled);
    else if (s.uid !== null) add(appsByUid, s.uid, compiled);
    else if (s.unit !== null) add(appsByUnit, s.unit, compiled);
    else if (s.gid !== null) add(appsByGid, s.gid, compiled);
  }
  const ownersByPf = new Map<PciAddress, OwnerRule[]>();
  for (const owner of policy.owners) add(ownersByPf, owner.pf, owner);
  return { guests, appsByUid, appsByUnit, appsByGid, ownersByPf };
}

function compile(rule: GrantRule): CompiledGrant {
  const ranges = new Map<PciAddress, VfRange[]>();
  for (const grant of rule.pfVfs) ranges.set(grant.pf, [...(ranges.get(grant.pf) ?? []), ...grant.ranges]);
  return { rule, vfs: new Set(rule.vfs), ranges };
}

function add<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
