import type { Command } from 'commander';
import { outputFor, withClient } from '../context.js';
import { hostSysfs, locateVfs, policyOf } from '../local-host.js';
import { decideGuest } from '../../broker/policy/decide.js';
import type { Policy } from '../../config/policy-config.js';
import type { BrokerClient } from '../../dbus/client.js';
import { isVfbError, VfbError } from '../../errors.js';
import { attachVf, detachVf } from '../../libvirt/domain-edit.js';
import { definitionVfs, syncDefinition, type SyncResult } from '../../libvirt/guest-definitions.js';
import { Virsh } from '../../libvirt/virsh.js';
import { createLogger } from '../../log.js';
import { parsePciAddress, type PciAddress } from '../../pci/address.js';
import { createNodeRunner } from '../../process/node-runner.js';
import type { Sysfs } from '../../sysfs/sysfs.js';

const address = (v: string): PciAddress => parsePciAddress(v, { lenient: true });

export function registerGuest(program: Command): void {
  const guest = program
    .command('guest')
    .description('write VFs and their tokens into libvirt guest definitions (through virsh; root)')
    .addHelpText(
      'after',
      `
These commands edit persistent definitions (virsh dumpxml --inactive, then virsh define), read
policy.yaml and sysfs themselves, and ask the broker for tokens. A running guest keeps the VFs it
has open; its next start uses the definition written here.

Examples:
  vfbroker guest attach vdu-1 0000:3b:10.1
  vfbroker guest sync --all`,
    );

  guest
    .command('attach')
    .description('add a managed hostdev for a VF, with its vf-token, to a guest’s persistent definition')
    .argument('<domain>', 'the libvirt guest, by name or UUID')
    .argument('<vf>', 'the VF address', address)
    .addHelpText(
      'after',
      `
Refuses a VF that policy.yaml does not grant the guest (exit 77). The hostdev gets a user alias
(ua-vfbroker-0000-3b-10-1 for VF 0000:3b:10.1) and a <qemu:override> that sets QEMU's vf-token
property on it (libvirt ≥ 8.2, QEMU ≥ 8.1, legacy VFIO backend; the override taints the domain and
does not apply to hot-plug).
--json prints one document: {domain, uuid, vf, attached}.

Example:
  vfbroker guest attach vdu-1 0000:3b:10.1`,
    )
    .action(async (domain: string, vf: PciAddress, _opts, cmd: Command) => {
      const out = outputFor(cmd);
      const { virsh, policy, sysfs } = await local(cmd);
      const xml = await virsh.dumpXmlInactive(domain);
      const { uuid } = definitionVfs(xml, `definition of ${domain}`);
      const decision = decideGuest(policy, uuid, vf, await locateVfs(sysfs, [vf]));
      if (!decision.allowed)
        throw new VfbError('DENIED', `guest ${domain} is not granted VF ${vf}: ${decision.reason}`);
      const token = await withClient(cmd, (c) => c.getToken(vf));
      await virsh.define(attachVf(xml, vf, token).xml, [token]);
      out.result([`${domain}: VF ${vf} attached with its vf-token (${decision.reason})`], {
        domain,
        uuid,
        vf,
        attached: true,
      });
    });

  guest
    .command('sync')
    .description('rewrite the vf-tokens in guest definitions to the active generation')
    .argument('[domain]', 'the libvirt guest, by name or UUID')
    .option('--all', 'every guest libvirt knows', false)
    .addHelpText(
      'after',
      `
Only VFs the policy grants the guest get a token; others are left as they are. Run after a
rotation when the broker could not sync a guest itself (it says so in its log), or after
editing a definition by hand.
--json prints one document: {guests: [{domain, uuid, vfs, changed}]}, vfs being the VFs whose
token is now the active one.

Examples:
  vfbroker guest sync vdu-1
  vfbroker guest sync --all`,
    )
    .action(async (domain: string | undefined, opts: { all: boolean }, cmd: Command) => {
      const out = outputFor(cmd);
      if ((domain === undefined) === !opts.all)
        throw new VfbError('INVALID_ARGUMENT', 'name a guest, or give --all');
      const { virsh, policy, sysfs } = await local(cmd);
      const domains = domain === undefined ? await virsh.listAll() : [domain];
      const results = await withClient(cmd, async (client) => {
        const done: SyncResult[] = [];
        for (const d of domains) done.push(await syncOne(virsh, d, policy, sysfs, client));
        return done;
      });
      out.result(
        results.map(
          (r) =>
            `${r.domain}: ${r.vfs.length === 0 ? 'no VFs vfbroker manages' : `${r.vfs.join(', ')} ${r.changed ? 'updated' : 'already current'}`}`,
        ),
        { guests: results },
      );
    });

  guest
    .command('detach')
    .description('remove a VF’s hostdev and its vf-token from a guest’s persistent definition')
    .argument('<domain>', 'the libvirt guest, by name or UUID')
    .argument('<vf>', 'the VF address', address)
    .addHelpText(
      'after',
      `
Removes the device that assigns the VF and its vf-token override, and the <qemu:override> element
and namespace declaration once nothing else uses them: attach then detach gives back the input.
A guest with no device for the VF gets exit 66.
--json prints one document: {domain, vf, changed}.

Example:
  vfbroker guest detach vdu-1 0000:3b:10.1`,
    )
    .action(async (domain: string, vf: PciAddress, _opts, cmd: Command) => {
      const out = outputFor(cmd);
      const { virsh } = await local(cmd);
      // detachVf refuses (NOT_FOUND) a definition without the VF, so reaching here means a change.
      await virsh.define(detachVf(await virsh.dumpXmlInactive(domain), vf).xml, []);
      out.result([`${domain}: VF ${vf} detached`], { domain, vf, changed: true });
    });
}

async function syncOne(
  virsh: Virsh,
  domain: string,
  policy: Policy,
  sysfs: Sysfs,
  client: BrokerClient,
): Promise<SyncResult> {
  const { vfs } = definitionVfs(await virsh.dumpXmlInactive(domain), `definition of ${domain}`);
  const locate = await locateVfs(sysfs, vfs);
  return syncDefinition(virsh, domain, async (vf, guest) => {
    if (locate(vf) === null || !decideGuest(policy, guest.uuid, vf, locate).allowed) return null;
    try {
      return await client.getToken(vf);
    } catch (err) {
      // A VF of a PF whose VFs need no token (mlx5) keeps its definition as it is.
      if (isVfbError(err, 'NOT_FOUND')) return null;
      throw err;
    }
  });
}

async function local(cmd: Command): Promise<{ virsh: Virsh; policy: Policy; sysfs: Sysfs }> {
  return {
    virsh: new Virsh(createNodeRunner({ logger: createLogger({ level: 'silent' }) })),
    policy: await policyOf(cmd),
    sysfs: await hostSysfs(cmd),
  };
}
