import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { globals, outputFor } from '../context.js';
import { loadBrokerConfig } from '../../config/broker-config.js';
import { applyInstall } from '../../install/apply.js';
import { planInstall } from '../../install/plan.js';

export function registerInstall(program: Command): void {
  program
    .command('install')
    .description('install the libvirt hook, the bus policy, the systemd unit and example configs')
    .option('--root <dir>', 'install under this directory instead of /', '/')
    .option('--dry-run', 'say what would be written and write nothing', false)
    .addHelpText(
      'after',
      `
Idempotent: files that already hold what vfbroker would write are left alone, and broker.yaml,
policy.yaml and the vfio-pci module settings are written only when absent. The hook's settings
(/etc/vfbroker/hook.json) come from broker.yaml: run install again after changing its dbus or hook
sections. libvirt finds hooks when it starts: after the first hook, restart it once. Run it from
where vfbroker will stay: the unit starts this copy of vfbroker, and it and the hook name this node.
--json prints one document: {dryRun, root, files: [{path, outcome, why}], restartLibvirt}, outcome
being written, updated, unchanged or kept (with --dry-run: what would happen).

Examples:
  vfbroker install --dry-run
  vfbroker install
  vfbroker install --root /tmp/image`,
    )
    .action(async (opts: { root: string; dryRun: boolean }, cmd: Command) => {
      const out = outputFor(cmd);
      const configPath = globals(cmd).config;
      // No broker.yaml yet is the usual first install: install writes the example.
      const config = existsSync(configPath) ? await loadBrokerConfig(configPath) : null;
      const report = await applyInstall(
        await planInstall({ config, node: process.execPath }),
        opts.root,
        opts.dryRun,
      );
      const verb = (o: string) =>
        opts.dryRun
          ? {
              written: 'would write',
              updated: 'would update',
              unchanged: 'unchanged',
              kept: 'kept (exists)',
            }[o]
          : o;
      out.result(
        [
          ...report.files.map((f) => `${(verb(f.outcome) ?? f.outcome).padEnd(13)} ${f.path}  (${f.why})`),
          ...(report.restartLibvirt
            ? [
                '',
                'libvirt finds hooks when it starts: restart it once (systemctl restart libvirtd, or virtqemud).',
              ]
            : []),
          ...(config === null
            ? ['', 'Edit /etc/vfbroker/broker.yaml and policy.yaml, then: systemctl enable --now vfbroker']
            : []),
        ],
        { dryRun: opts.dryRun, root: opts.root, ...report },
      );
    });
}
