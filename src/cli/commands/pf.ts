import type { Command } from 'commander';
import { globals, outputFor, withClient } from '../context.js';
import { pluginPfConfig } from '../../broker/managed-pfs.js';
import { loadBrokerConfig } from '../../config/broker-config.js';
import { driverctlCommands } from '../../driverctl/commands.js';
import { createLogger } from '../../log.js';
import { pfUp } from '../../plugins/lifecycle/pf.js';
import { PluginRegistry } from '../../plugins/registry.js';
import { createNodeRunner } from '../../process/node-runner.js';
import { openSysfs } from '../../sysfs/open.js';
import { VfbError } from '../../errors.js';
import { parsePciAddress, type PciAddress } from '../../pci/address.js';
import { renderStatus, type PfStatus } from '../../plugins/status.js';

const address = (v: string): PciAddress => parsePciAddress(v, { lenient: true });

export function registerPf(program: Command): void {
  const pf = program
    .command('pf')
    .description('bring PFs up and down, and show their life-cycle state (through the broker)')
    .addHelpText(
      'after',
      `
The broker supervises the PF drivers, so these commands ask it over D-Bus; up and down need root.
What each plugin does to a PF is in plugins/<plugin>/README.md.

Examples:
  vfbroker pf status
  vfbroker pf up --all`,
    );

  pf.command('up')
    .description('bring a PF up: bind it, enable its VFs, start its PF driver with its token')
    .argument('[pf]', 'the PF address', address)
    .option('--all', 'every PF in broker.yaml', false)
    .option('--dry-run', 'print what would change and change nothing', false)
    .option(
      '--print-driverctl',
      'print the driverctl commands that make the bindings survive a reboot (no broker needed)',
      false,
    )
    .addHelpText(
      'after',
      `
Every step is idempotent: running it again on a PF that is up changes nothing, and it finishes a
PF left half set up. A PF whose VFs guests hold is refused (exit 75) when the plan would remove
them, and so is a PF that is rotating its token. With --print-driverctl it changes nothing and
needs no broker: it prints the driverctl commands that keep the PF's and VFs' driver bindings
across a reboot, as shell lines with # notes.
--json prints one document: {dryRun, pfs: [{pf, plan}]}, plan being the lines of the plan; with
--print-driverctl, {commands}.

Examples:
  vfbroker pf up 0000:3b:00.0 --dry-run
  vfbroker pf up --all
  vfbroker pf up --all --print-driverctl`,
    )
    .action(
      async (
        one: PciAddress | undefined,
        opts: { all: boolean; dryRun: boolean; printDriverctl: boolean },
        cmd: Command,
      ) => {
        const out = outputFor(cmd);
        if (opts.printDriverctl) {
          const commands = await driverctlLines(cmd, one, opts.all);
          out.result(commands, { commands: commands.filter((l) => !l.startsWith('#') && l !== '') });
          return;
        }
        const plans = await withClient(cmd, async (c) => {
          const targets = await targetsOf(one, opts.all, () => c.listPfs());
          const done: { pf: PciAddress; plan: string }[] = [];
          for (const target of targets) {
            if (!opts.dryRun) out.progress(`bringing ${target} up…`);
            done.push({ pf: target, plan: await c.pfUp(target, opts.dryRun) });
          }
          return done;
        });
        out.result(
          plans.flatMap((p) => [...p.plan.split('\n'), ...(opts.dryRun ? [] : [`  → ${p.pf} is up`])]),
          { dryRun: opts.dryRun, pfs: plans.map((p) => ({ pf: p.pf, plan: p.plan.split('\n') })) },
        );
      },
    );

  pf.command('down')
    .description('stop a PF’s driver and remove its VFs; --release also gives the PF back to the host')
    .argument('<pf>', 'the PF address', address)
    .option('--release', 'clear driver_override, unbind and let the kernel reprobe the PF', false)
    .addHelpText(
      'after',
      `
Refused (exit 75) while guests hold VFs of the PF or its token is rotating.
--json prints one document: {pf, state, released}.

Examples:
  vfbroker pf down 0000:3b:00.0
  vfbroker pf down 0000:3b:00.0 --release`,
    )
    .action(async (target: PciAddress, opts: { release: boolean }, cmd: Command) => {
      const out = outputFor(cmd);
      out.progress(`bringing ${target} down…`);
      await withClient(cmd, (c) => c.pfDown(target, opts.release));
      out.result([`${target}: down`], { pf: target, state: 'down', released: opts.release });
    });

  pf.command('status')
    .description('each life-cycle step of a PF and whether it is done (all PFs: a summary)')
    .argument('[pf]', 'the PF address', address)
    .addHelpText(
      'after',
      `
Without a PF: one line per PF with its plugin, state, VF count and how many VFs guests hold. With
one: each step (pf-bound, device steps, vfs-enabled, vfs-bound, driver-running) marked done or not,
VFs outside VF-token protection, and how the PF driver last exited.
--json prints one document: {pfs: [...]} without a PF, as token status prints it, and with one
{plugin, pf, deviceId, state, pfDriver, wantedVfs, vfs, steps: [{step, done, detail}], driver,
lastError, ...}.

Examples:
  vfbroker pf status
  vfbroker pf status 0000:3b:00.0 --json`,
    )
    .action(async (one: PciAddress | undefined, _opts, cmd: Command) => {
      const out = outputFor(cmd);
      if (one === undefined) {
        const pfs = await withClient(cmd, (c) => c.listPfs());
        out.result(
          pfs.map(
            (p) =>
              `${p.address}  ${p.plugin.padEnd(10)} ${p.state.padEnd(9)} ${p.numVfs} VFs, ${p.leases} leased`,
          ),
          { pfs },
        );
        return;
      }
      const status = (await withClient(cmd, (c) => c.pfStatus(one))) as PfStatus & {
        lastError: string | null;
      };
      out.result(
        [renderStatus(status), ...(status.lastError ? [`  last error: ${status.lastError}`] : [])],
        status,
      );
    });
}

/**
 * The driverctl commands for PFs' bindings, from plans made here (read-only): vfbroker never runs
 * driverctl itself, it only says what to run.
 */
async function driverctlLines(cmd: Command, one: PciAddress | undefined, all: boolean): Promise<string[]> {
  const config = await loadBrokerConfig(globals(cmd).config);
  const sysfs = await openSysfs(config.sysfs);
  const logger = createLogger({ level: 'silent' });
  const registry = await PluginRegistry.load({ logger, externalPaths: config.plugins.paths });
  const context = {
    sysfs,
    runner: createNodeRunner({ logger }),
    logger,
    runtimeDirectory: config.runtimeDirectory,
  };
  try {
    const targets = await targetsOf(one, all, () => Promise.resolve(config.pfs));
    const lines: string[] = [];
    for (const target of targets) {
      const entry = config.pfs.find((p) => p.address === target);
      if (!entry) throw new VfbError('NOT_FOUND', `PF ${target} is not in ${config.file}`);
      const pf = pluginPfConfig(entry);
      const { plugin } = await registry.select(sysfs, pf);
      const { plan } = await pfUp(context, plugin, pf, null, { dryRun: true });
      lines.push(...(await driverctlCommands(plan, sysfs, config.driverctl.directory)), '');
    }
    return lines;
  } finally {
    await registry.close();
  }
}

async function targetsOf(
  one: PciAddress | undefined,
  all: boolean,
  list: () => Promise<readonly { address: PciAddress }[]>,
): Promise<PciAddress[]> {
  if (one !== undefined && all) throw new VfbError('INVALID_ARGUMENT', 'name a PF or give --all, not both');
  if (one !== undefined) return [one];
  if (all) return (await list()).map((p) => p.address);
  throw new VfbError('INVALID_ARGUMENT', 'name a PF, or give --all');
}
