import type { Command } from 'commander';
import { outputFor, withClient } from '../context.js';
import { VfbError } from '../../errors.js';
import { parsePciAddress, type PciAddress } from '../../pci/address.js';
import { renderStatus, type PfStatus } from '../../plugins/status.js';

const address = (v: string): PciAddress => parsePciAddress(v, { lenient: true });

export function registerPf(program: Command): void {
  const pf = program
    .command('pf')
    .description('bring PFs up and down, and show their life-cycle state (through the broker)');

  pf.command('up')
    .description('bring a PF up: bind it, enable its VFs, start its PF driver with its token')
    .argument('[pf]', 'the PF address', address)
    .option('--all', 'every PF in broker.yaml', false)
    .option('--dry-run', 'print what would change and change nothing', false)
    .addHelpText(
      'after',
      `
Every step is idempotent: running it again on a PF that is up changes nothing, and it finishes a
PF left half set up. A PF whose VFs guests hold is refused when the plan would remove them.

Examples:
  vfbroker pf up 0000:3b:00.0 --dry-run
  vfbroker pf up --all`,
    )
    .action(async (one: PciAddress | undefined, opts: { all: boolean; dryRun: boolean }, cmd: Command) => {
      const out = outputFor(cmd);
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
    });

  pf.command('down')
    .description('stop a PF’s driver and remove its VFs; --release also gives the PF back to the host')
    .argument('<pf>', 'the PF address', address)
    .option('--release', 'clear driver_override, unbind and let the kernel reprobe the PF', false)
    .addHelpText(
      'after',
      `\nRefused while guests hold VFs of the PF.\n\nExample:\n  vfbroker pf down 0000:3b:00.0 --release`,
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
    .addHelpText('after', `\nExamples:\n  vfbroker pf status\n  vfbroker pf status 0000:3b:00.0 --json`)
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

async function targetsOf(
  one: PciAddress | undefined,
  all: boolean,
  list: () => Promise<{ address: PciAddress }[]>,
): Promise<PciAddress[]> {
  if (one !== undefined && all) throw new VfbError('INVALID_ARGUMENT', 'name a PF or give --all, not both');
  if (one !== undefined) return [one];
  if (all) return (await list()).map((p) => p.address);
  throw new VfbError('INVALID_ARGUMENT', 'name a PF, or give --all');
}
