/**
 * Policy decisions: may this guest or this application have this VF's token, may this consumer set
 * this PF's VF count. Pure functions of the resolved policy and their arguments; the broker gathers
 * the facts (caller credentials from the bus, VF-to-PF links from sysfs) and passes them in.
 *
 * Default deny: a decision is "allowed" only when a rule grants it, and it then cites that rule
 * (the lowest-numbered one, when several do). The reason is one line fit for a log or a refusal.
 * Being root earns nothing here: whether root bypasses the policy is the broker's call.
 */
import type { Caller } from '../api.js';
import type { OwnerRule, Policy, PolicySubject, RuleOrigin } from '../../config/policy-config.js';
import type { PciAddress } from '../../pci/address.js';
import { indexPolicy, type CompiledGrant } from './policy-index.js';

export interface Decision {
  readonly allowed: boolean;
  /** The rule that allowed it; absent when nothing did. */
  readonly rule?: RuleOrigin;
  readonly reason: string;
}

/** Where a VF sits: its PF and its index there (VF n is the PF's `virtfnN`); null for a non-VF. */
export type VfLocator = (vf: PciAddress) => { readonly pf: PciAddress; readonly index: number } | null;

/** What the policy looks at of a bus caller. */
export type AppCaller = Pick<Caller, 'uid' | 'gids' | 'unit'>;

export type OwnerCandidate =
  { readonly kind: 'guest'; readonly uuid: string } | { readonly kind: 'app'; readonly caller: AppCaller };

export function decideGuest(policy: Policy, guestUuid: string, vf: PciAddress, locate: VfLocator): Decision {
  const uuid = guestUuid.toLowerCase();
  const candidates = indexPolicy(policy).guests.get(uuid) ?? [];
  const grant = firstGranting(candidates, vf, locate);
  return grant ? allowedBy(grant.rule) : denied(`no rule grants guest ${uuid} VF ${vf} (default deny)`);
}

export function decideApp(policy: Policy, caller: AppCaller, vf: PciAddress, locate: VfLocator): Decision {
  const index = indexPolicy(policy);
  const candidates = [
    ...(index.appsByUid.get(caller.uid) ?? []),
    ...(caller.unit === null ? [] : (index.appsByUnit.get(caller.unit) ?? [])),
    ...caller.gids.flatMap((gid) => index.appsByGid.get(gid) ?? []),
  ]
    .filter((c) => matchesApp(c.rule.subject, caller))
    .sort((a, b) => a.rule.index - b.rule.index);
  const grant = firstGranting(candidates, vf, locate);
  return grant
    ? allowedBy(grant.rule)
    : denied(`no rule grants ${describeCaller(caller)} VF ${vf} (default deny)`);
}

/** May the candidate change the VF count of `pf` (SetNumVfs)? */
export function decideOwner(policy: Policy, who: OwnerCandidate, pf: PciAddress): Decision {
  const owners = indexPolicy(policy).ownersByPf.get(pf) ?? [];
  const owner = owners.find((o: OwnerRule) =>
    who.kind === 'guest'
      ? o.subject.kind === 'guest' && o.subject.uuid === who.uuid.toLowerCase()
      : matchesApp(o.subject, who.caller),
  );
  if (owner) return allowedBy(owner);
  const subject = who.kind === 'guest' ? `guest ${who.uuid.toLowerCase()}` : describeCaller(who.caller);
  return denied(`no owner rule lets ${subject} set the VF count of PF ${pf} (default deny)`);
}

function firstGranting(
  candidates: readonly CompiledGrant[],
  vf: PciAddress,
  locate: VfLocator,
): CompiledGrant | undefined {
  // Looked up at most once, and only when a candidate grants by PF and index.
  let location: ReturnType<VfLocator> | undefined;
  const where = () => (location === undefined ? (location = locate(vf)) : location);
  return candidates.find((c) => {
    if (c.vfs.has(vf)) return true;
    if (c.ranges.size === 0) return false;
    const at = where();
    return at !== null && (c.ranges.get(at.pf) ?? []).some((r) => r.first <= at.index && at.index <= r.last);
  });
}

function matchesApp(subject: PolicySubject, caller: AppCaller): boolean {
  return (
    subject.kind === 'app' &&
    (subject.uid === null || subject.uid === caller.uid) &&
    (subject.gid === null || caller.gids.includes(subject.gid)) &&
    (subject.unit === null || subject.unit === caller.unit)
  );
}

/** A rule allows in the same words every time: one Decision per rule, as PrepareGuest asks per device. */
const allowedByRule = new WeakMap<RuleOrigin, Decision>();

function allowedBy(rule: RuleOrigin): Decision {
  let decision = allowedByRule.get(rule);
  if (decision === undefined) {
    const origin: RuleOrigin = { list: rule.list, index: rule.index, file: rule.file, line: rule.line };
    decision = Object.freeze({
      allowed: true,
      rule: Object.freeze(origin),
      reason: `allowed by ${rule.list}[${rule.index}] in ${rule.file}:${rule.line}`,
    });
    allowedByRule.set(rule, decision);
  }
  return decision;
}

function denied(reason: string): Decision {
  return { allowed: false, reason };
}

function describeCaller(caller: AppCaller): string {
  return `uid ${caller.uid} (${caller.unit === null ? 'outside any systemd unit' : `unit ${caller.unit}`})`;
}
