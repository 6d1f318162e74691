import type { Command } from 'commander';
import { outputFor, withClient } from '../context.js';
import { VfbError } from '../../errors.js';
import { parsePciAddress } from '../../pci/address.js';

const address = (v: string) => parsePciAddress(v, { lenient: true });

export function registerToken(program: Command): void {
  const token = program.command('token').description('read and rotate VF tokens (through the broker)');

  token
    .command('get')
    .description('print the token of a VF (or, as root, of a PF) on stdout')
    .requiredOption('--vf <address>', 'the VF (or PF) address', address)
    .addHelpText(
      'after',
      `
Root, or a consumer that policy.yaml grants the VF, may read its token. The token is printed on
stdout and nowhere else; use it where it is needed, e.g.:
  dpdk-testpmd -a 0000:3b:10.1 --vfio-vf-token=$(vfbroker token get --vf 0000:3b:10.1) -- -i`,
    )
    .action(async (opts: { vf: ReturnType<typeof address> }, cmd: Command) => {
      const out = outputFor(cmd);
      const value = await withClient(cmd, (c) => c.getToken(opts.vf));
      out.result([value], { vf: opts.vf, token: value });
    });

  token
    .command('rotate')
    .description('rotate the token of a PF now (live, or drained when its PF driver needs that)')
    .argument('[pf]', 'the PF address', address)
    .option('--all', 'rotate every PF that has a token', false)
    .addHelpText('after', `\nExamples:\n  vfbroker token rotate 0000:3b:00.0\n  vfbroker token rotate --all`)
    .action(async (pf: ReturnType<typeof address> | undefined, opts: { all: boolean }, cmd: Command) => {
      const out = outputFor(cmd);
      const results = await withClient(cmd, async (c) => {
        const targets = opts.all
          ? (await c.listPfs()).filter((p) => p.needsToken).map((p) => p.address)
          : pf
            ? [pf]
            : [];
        if (targets.length === 0) throw new VfbError('INVALID_ARGUMENT', 'name a PF, or give --all');
        const done: { pf: string; state: string }[] = [];
        for (const target of targets) {
          out.progress(`rotating ${target}…`);
          done.push({ pf: target, state: await c.rotate(target) });
        }
        return done;
      });
      out.result(
        results.map((r) => `${r.pf}: ${r.state}`),
        { rotations: results },
      );
    });

  token
    .command('status')
    .description('each PF’s token generation, rotation mode and leases')
    .action(async (_opts, cmd: Command) => {
      const out = outputFor(cmd);
      const pfs = await withClient(cmd, (c) => c.listPfs());
      out.result(
        pfs.map(
          (p) =>
            `${p.address}  ${p.plugin.padEnd(10)} ${p.state.padEnd(9)} ${p.needsToken ? `generation ${p.generation}` : 'no token needed'}, rotation ${p.rotationMode}, ${p.leases} lease(s)`,
        ),
        { pfs },
      );
    });
}
