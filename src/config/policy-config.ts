/**
 * /etc/vfbroker/policy.yaml: who may have which VF's token, and who may set a PF's VF count.
 * Default deny: nothing is allowed unless a rule grants it, and there are no deny rules, so the
 * order of rules never changes a decision (only which rule a decision cites).
 *
 * Rules name their consumer by libvirt guest UUID, or as an application by unix user, group and
 * systemd unit (every selector given must match). User and group names become ids here, once, so
 * evaluation (src/broker/policy/) compares numbers. Each resolved rule keeps its list, index and
 * line, so a decision can say which rule allowed it. etc/vfbroker/policy.yaml documents the format.
 */
import { UUID_PATTERN } from '../uuid.js';
import * as z from 'zod';
import type { PciAddress } from '../pci/address.js';
import { MAX_ID, readAccounts, type Accounts } from './accounts.js';
import { deepFreeze } from './freeze.js';
import { expecting, list, mapping, matching, oneShapeOf, pciAddress } from './schema.js';
import { expectation, quote } from './wording.js';
import { YamlSource, type ReadOptions } from './yaml-source.js';

export const DEFAULT_POLICY_PATH = '/etc/vfbroker/policy.yaml';

/** The highest VF index: broker.yaml allows at most 256 VFs per PF. */
export const MAX_VF_INDEX = 255;

/** What useradd and groupadd accept, and what Debian adds (`.`, a trailing `$` for machine accounts). */
const ACCOUNT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$/;
/** Callers run in a service or a scope (a session, a `systemd-run --scope`). */
const UNIT = /^[A-Za-z0-9:_.\\-]+(?:@[A-Za-z0-9:_.\\-]*)?\.(?:service|scope)$/;
const RANGE = /^([0-9]{1,3})(?:-([0-9]{1,3}))?$/;

export interface VfRange {
  readonly first: number;
  readonly last: number;
}

/** VFs of one PF, by index (VF n is the PF's `virtfnN`). */
export interface PfVfGrant {
  readonly pf: PciAddress;
  readonly ranges: readonly VfRange[];
}

export type PolicySubject =
  | { readonly kind: 'guest'; readonly uuid: string }
  | {
      readonly kind: 'app';
      /** Each selector that is not null must match the caller. */
      readonly uid: number | null;
      readonly gid: number | null;
      readonly unit: string | null;
    };

/** Where a rule was written: `rules[3]` at policy.yaml:14. */
export interface RuleOrigin {
  readonly list: 'rules' | 'owners';
  readonly index: number;
  readonly file: string;
  readonly line: number;
}

export interface GrantRule extends RuleOrigin {
  readonly list: 'rules';
  /** The rule's `name`: a label for people, never matched against anything. */
  readonly label: string | null;
  readonly subject: PolicySubject;
  /** VFs named by address. */
  readonly vfs: readonly PciAddress[];
  /** VFs named by PF and index. */
  readonly pfVfs: readonly PfVfGrant[];
}

/** Lets its subject change the VF count of a PF (SetNumVfs). */
export interface OwnerRule extends RuleOrigin {
  readonly list: 'owners';
  readonly label: string | null;
  readonly subject: PolicySubject;
  readonly pf: PciAddress;
}

export interface Policy {
  readonly file: string;
  readonly rules: readonly GrantRule[];
  readonly owners: readonly OwnerRule[];
}

type AccountRef = { readonly id: number } | { readonly name: string };

/** A user or group, by name or by id: `dpdk`, `1000` or "1000". */
function account(kind: 'user' | 'group') {
  const what = `a ${kind} name or ${kind === 'user' ? 'uid' : 'gid'}, like "dpdk" or 1000`;
  const e = expecting(what);
  return oneShapeOf(what, {
    number: z
      .number(e)
      .int(e)
      .min(0, e)
      .max(MAX_ID, e)
      .transform((id): AccountRef => ({ id })),
    string: z.string().transform((text, ctx): AccountRef => {
      if (/^[0-9]{1,10}$/.test(text) && Number(text) <= MAX_ID) return { id: Number(text) };
      if (ACCOUNT_NAME.test(text)) return { name: text };
      ctx.addIssue({ code: 'custom', input: text, message: expectation(what, text) });
      return z.NEVER;
    }),
  });
}

function vfRange() {
  const what = `a VF index from 0 to ${MAX_VF_INDEX} or a range like "0-3"`;
  const check = (first: number, last: number, input: unknown, ctx: z.RefinementCtx): VfRange => {
    if (
      Number.isInteger(first) &&
      Number.isInteger(last) &&
      first >= 0 &&
      first <= last &&
      last <= MAX_VF_INDEX
    ) {
      return { first, last };
    }
    ctx.addIssue({ code: 'custom', input, message: expectation(what, input) });
    return z.NEVER;
  };
  return oneShapeOf(what, {
    number: z.number().transform((n, ctx) => check(n, n, n, ctx)),
    string: z.string().transform((text, ctx) => {
      const m = RANGE.exec(text);
      return m ? check(Number(m[1]), Number(m[2] ?? m[1]), text, ctx) : check(-1, -1, text, ctx);
    }),
  });
}

const subjectKeys = {
  guest: matching(
    UUID_PATTERN,
    'a libvirt guest UUID like "6f1c2d3e-8a4b-4c5d-9e6f-0123456789ab"',
    36,
  ).optional(),
  app: mapping({
    user: account('user').optional(),
    group: account('group').optional(),
    unit: matching(UNIT, 'a systemd unit like "dpdk-fwd.service"', 255).optional(),
  }).optional(),
  name: z.string(expecting('a label')).max(128, expecting('a label of at most 128 characters')).optional(),
};

const vfGrant = oneShapeOf('a VF address like 0000:3b:02.1, or a mapping with "pf" and "vfs"', {
  string: pciAddress(),
  mapping: mapping({
    pf: pciAddress(),
    vfs: list(vfRange()).min(1, expecting('at least one VF index or range')),
  }),
});

const policySchema = mapping({
  rules: list(mapping({ ...subjectKeys, vfs: list(vfGrant).min(1, expecting('at least one VF')) })).default(
    [],
  ),
  owners: list(mapping({ ...subjectKeys, pf: pciAddress() })).default([]),
});

/** policy.yaml as written. */
export type PolicyInput = z.input<typeof policySchema>;
type Validated = z.output<typeof policySchema>;
type ValidatedRule = Validated['rules'][number] | Validated['owners'][number];

export interface PolicyOptions {
  /** The directory whose etc/passwd and etc/group resolve names; `/` when absent. */
  readonly accountsRoot?: string;
}

export async function loadPolicyConfig(
  path: string = DEFAULT_POLICY_PATH,
  options: PolicyOptions & ReadOptions = {},
): Promise<Policy> {
  const source = await YamlSource.read(path, options);
  return resolvePolicy(source, await readAccounts(options.accountsRoot));
}

export function parsePolicyConfig(text: string, sourceName: string, accounts: Accounts): Policy {
  return resolvePolicy(YamlSource.parse(text, sourceName), accounts);
}

function resolvePolicy(source: YamlSource, accounts: Accounts): Policy {
  const input = source.validate(policySchema);
  const origin = <L extends 'rules' | 'owners'>(list: L, index: number) => ({
    list,
    index,
    file: source.name,
    line: source.locate([list, index]).line,
  });
  const subjectOf = (list: 'rules' | 'owners', index: number, rule: ValidatedRule): PolicySubject =>
    resolveSubject(source, accounts, [list, index], rule);

  return deepFreeze<Policy>({
    file: source.name,
    rules: input.rules.map((rule, index): GrantRule => {
      const vfs: PciAddress[] = [];
      const pfVfs: PfVfGrant[] = [];
      for (const grant of rule.vfs) {
        if (typeof grant === 'string') vfs.push(grant);
        else pfVfs.push({ pf: grant.pf, ranges: grant.vfs });
      }
      return {
        ...origin('rules', index),
        label: rule.name ?? null,
        subject: subjectOf('rules', index, rule),
        vfs,
        pfVfs,
      };
    }),
    owners: input.owners.map((rule, index): OwnerRule => ({
      ...origin('owners', index),
      label: rule.name ?? null,
      subject: subjectOf('owners', index, rule),
      pf: rule.pf,
    })),
  });
}

function resolveSubject(
  source: YamlSource,
  accounts: Accounts,
  at: readonly PropertyKey[],
  rule: ValidatedRule,
): PolicySubject {
  if (rule.guest !== undefined && rule.app === undefined)
    return { kind: 'guest', uuid: rule.guest.toLowerCase() };
  if (rule.app === undefined || rule.guest !== undefined) {
    const found = rule.app === undefined ? 'neither' : '"guest" and "app"';
    throw source.error(at, `expected exactly one of "guest" or "app", found ${found}`);
  }
  const { user, group, unit } = rule.app;
  if (user === undefined && group === undefined && unit === undefined) {
    throw source.error([...at, 'app'], 'expected at least one of "user", "group" or "unit", found none');
  }
  const id = (ref: AccountRef | undefined, kind: 'user' | 'group'): number | null => {
    if (ref === undefined) return null;
    if ('id' in ref) return ref.id;
    const found = kind === 'user' ? accounts.uid(ref.name) : accounts.gid(ref.name);
    if (found !== null) return found;
    const file = kind === 'user' ? accounts.passwdFile : accounts.groupFile;
    throw source.error(
      [...at, 'app', kind],
      `no ${kind} ${quote(ref.name)} in ${file} (a ${kind} from LDAP or sssd must be given by its ${kind === 'user' ? 'uid' : 'gid'})`,
    );
  };
  return { kind: 'app', uid: id(user, 'user'), gid: id(group, 'group'), unit: unit ?? null };
}
