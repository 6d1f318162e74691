import type { Command } from 'commander';
import { outputFor } from '../context.js';
import { hostSysfs, locateVfs, policyOf } from '../local-host.js';
import {
  decideApp,
  decideGuest,
  decideOwner,
  type Decision,
  type OwnerCandidate,
} from '../../broker/policy/decide.js';
import { VfbError } from '../../errors.js';
import { isUuid } from '../../uuid.js';
import { parsePciAddress, type PciAddress } from '../../pci/address.js';

interface CheckOptions {
  readonly guest?: string;
  readonly uid?: number;
  readonly gid?: number[];
  readonly unit?: string;
  readonly vf?: PciAddress;
  readonly pf?: PciAddress;
}

export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .description('check policy.yaml and explain its decisions')
    .addHelpText(
      'after',
      `
The broker reads policy.yaml at start and on SIGHUP (systemctl kill --kill-whom=main -s HUP
vfbroker), and keeps the policy it has when the new one does not validate; check a change first.

Examples:
  vfbroker policy check
  vfbroker policy check --policy ./policy.yaml`,
    );

  policy
    .command('check')
    .description(
      'validate policy.yaml; with --vf, say whether a guest or an application gets that VF and why; with --pf, whether it may set that PF’s VF count',
    )
    .option('--guest <uuid>', 'a libvirt guest, by UUID (virsh domuuid NAME)', guestUuid)
    .option('--uid <uid>', 'an application, by the uid it runs as', id)
    .option(
      '--gid <gid>',
      'a group of the application (repeat for several)',
      (v: string, all: number[] = []) => [...all, id(v)],
    )
    .option('--unit <unit>', 'the systemd unit the application runs in')
    .option('--vf <address>', 'the VF to decide about', (v: string) => parsePciAddress(v, { lenient: true }))
    .option('--pf <address>', 'the PF whose VF count (SetNumVfs) to decide about', (v: string) =>
      parsePciAddress(v, { lenient: true }),
    )
    .addHelpText(
      'after',
      `
Reads the files locally (no broker needed); the VF's PF and index come from sysfs (broker.yaml's
sysfs setting). With --pf, a guest is the one whose QEMU calls SetNumVfs: the broker recognises
it from libvirt's status files (broker.yaml's libvirt.runDirectory). Exit status 0 when the
consumer is allowed or only validation was asked, 77 when denied, 78 when policy.yaml does not
validate (the error names the line and column).
--json prints one document: {file, valid, rules, owners} when validating, {vf, subject, allowed,
reason, rule} with --vf and {pf, subject, allowed, reason, rule} with --pf, rule being {list,
index, file, line} and left out on a denial.

Examples:
  vfbroker policy check
  vfbroker policy check --guest 6f1c2d3e-8a4b-4c5d-9e6f-0123456789ab --vf 0000:3b:10.1
  vfbroker policy check --uid 1001 --unit dpdk-fwd.service --vf 0000:3b:10.3
  vfbroker policy check --guest 3e8f1a2b-4c5d-4e6f-9a0b-1c2d3e4f5a6b --pf 0000:d8:00.0`,
    )
    .action(async (opts: CheckOptions, cmd: Command) => {
      const out = outputFor(cmd);
      const policy = await policyOf(cmd);
      const { vf, pf } = opts;
      if (vf !== undefined && pf !== undefined)
        throw new VfbError('INVALID_ARGUMENT', 'give one of --vf and --pf');
      const about = vf !== undefined ? { vf } : pf !== undefined ? { pf } : null;
      if (about === null) {
        if (opts.guest !== undefined || opts.uid !== undefined)
          throw new VfbError('INVALID_ARGUMENT', 'give --vf or --pf with --guest or --uid');
        out.result(
          [`${policy.file}: valid, ${policy.rules.length} rules, ${policy.owners.length} owner rules`],
          {
            file: policy.file,
            valid: true,
            rules: policy.rules.length,
            owners: policy.owners.length,
          },
        );
        return;
      }
      const who = consumer(opts);
      const subject = who.kind === 'guest' ? `guest ${who.uuid}` : `uid ${who.caller.uid}`;
      let decision: Decision;
      let what: string;
      if ('vf' in about) {
        const locate = await locateVfs(await hostSysfs(cmd), [about.vf]);
        decision =
          who.kind === 'guest'
            ? decideGuest(policy, who.uuid, about.vf, locate)
            : decideApp(policy, who.caller, about.vf, locate);
        what = `VF ${about.vf}`;
      } else {
        decision = decideOwner(policy, who, about.pf);
        what = `VF count of PF ${about.pf}`;
      }
      out.result([`${subject}, ${what}: ${decision.allowed ? 'allowed' : 'denied'} — ${decision.reason}`], {
        ...about,
        subject,
        allowed: decision.allowed,
        reason: decision.reason,
        ...(decision.rule ? { rule: decision.rule } : {}),
      });
      if (!decision.allowed) process.exitCode = new VfbError('DENIED', decision.reason).exitCode;
    });
}

/** The consumer asked about: a guest by UUID, or an application by uid, groups and unit. */
function consumer(opts: CheckOptions): OwnerCandidate {
  if (opts.guest !== undefined && opts.uid === undefined) return { kind: 'guest', uuid: opts.guest };
  if (opts.uid !== undefined && opts.guest === undefined)
    return { kind: 'app', caller: { uid: opts.uid, gids: opts.gid ?? [], unit: opts.unit ?? null } };
  throw new VfbError('INVALID_ARGUMENT', 'give exactly one of --guest and --uid');
}

function guestUuid(v: string): string {
  if (!isUuid(v)) throw new VfbError('INVALID_ARGUMENT', 'a guest is named by its UUID (virsh domuuid NAME)');
  return v.toLowerCase();
}

function id(v: string): number {
  if (!/^[0-9]{1,10}$/.test(v) || Number(v) > 4_294_967_294)
    throw new VfbError('INVALID_ARGUMENT', `not a numeric id: ${JSON.stringify(v.slice(0, 16))}`);
  return Number(v);
}
