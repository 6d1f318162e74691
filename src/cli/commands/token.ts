import type { Command } from 'commander';
import { outputFor, withClient } from '../context.js';
import { VfbError } from '../../errors.js';
import { parsePciAddress, type PciAddress } from '../../pci/address.js';

const address = (v: string): PciAddress => parsePciAddress(v, { lenient: true });

export function registerToken(program: Command): void {
  const token = program
    .command('token')
    .description('read and rotate VF tokens (through the broker)')
    .addHelpText(
      'after',
      `
The broker keeps the tokens: these commands ask it over D-Bus (see --bus and --timeout).

Examples:
  vfbroker token status
  vfbroker token get --vf 0000:3b:10.1`,
    );

  token
    .command('get')
    .description('print the token of a VF (or, as root, of a PF) on stdout')
    .requiredOption('--vf <address>', 'the VF (or PF) address', address)
    .addHelpText(
      'after',
      `
Root, or a consumer that policy.yaml grants the VF, may read its token; anyone else gets exit 77.
A VF whose PF needs no token (mlx5) gets exit 66. The token is printed on stdout and nowhere else:
hand it straight to the program that needs it.
--json prints one document: {vf, token}.

Examples:
  vfbroker token get --vf 0000:3b:10.1
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
    .addHelpText(
      'after',
      `
A PF whose driver takes a new token while it runs (rotation mode live) is done at once. One whose
driver must restart (drain) answers "draining": the broker waits until no guest holds a VF of the
PF, refusing new guest starts on it with "rotating", and gives up at the PF's drainTimeout in
broker.yaml. A PF driver that refuses the new token keeps the old one ("rolled-back"). Authorised
guests' definitions are synced to the new token. A PF already rotating gets exit 75.
--json prints one document: {rotations: [{pf, state}]}, state being done, draining or rolled-back.

Examples:
  vfbroker token rotate 0000:3b:00.0
  vfbroker token rotate --all`,
    )
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
    .description('each PF’s token generation and age, rotation mode and state, and leases')
    .argument('[pf]', 'only this PF', address)
    .addHelpText(
      'after',
      `
One line per PF: address, plugin, state (up, down, degraded or rotating), the active token
generation and its age, the rotation mode (live, drain or none) and how many of its VFs guests
hold; then, for a rotation under way, its step, the generation it applies and — while a drain
rotation waits — the guests it waits for and its deadline.
--json prints one document: {pfs: [{address, plugin, state, numVfs, needsToken, generation,
rotationMode, leases, activeSince, pendingGeneration, rotationStep, waitingFor, drainDeadline}]},
generation being 0 for a PF without a token and the rotation fields empty (or 0) when none runs.

Examples:
  vfbroker token status
  vfbroker token status 0000:3b:00.0 --json`,
    )
    .action(async (only: PciAddress | undefined, _opts, cmd: Command) => {
      const out = outputFor(cmd);
      const all = await withClient(cmd, (c) => c.listPfs());
      const pfs = only === undefined ? all : all.filter((p) => p.address === only);
      if (only !== undefined && pfs.length === 0)
        throw new VfbError('NOT_FOUND', `PF ${only} is not managed by vfbroker`);
      const now = Date.now();
      out.result(
        pfs.flatMap((p) => [
          `${p.address}  ${p.plugin.padEnd(10)} ${p.state.padEnd(9)} ${p.needsToken ? `generation ${p.generation}${p.activeSince ? ` (${age(now, p.activeSince)} old)` : ''}` : 'no token needed'}, rotation ${p.rotationMode}, ${p.leases} lease(s)`,
          ...(p.rotationStep
            ? [
                `  rotating to generation ${p.pendingGeneration}: ${p.rotationStep}${p.waitingFor ? `, waiting for ${p.waitingFor}` : ''}${p.drainDeadline ? ` until ${p.drainDeadline}` : ''}`,
              ]
            : []),
        ]),
        { pfs },
      );
    });
}

/** "3d", "5h", "12m": how long ago an ISO time was, coarsely. */
function age(now: number, iso: string): string {
  const s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
  if (s >= 86_400) return `${Math.floor(s / 86_400)}d`;
  if (s >= 3_600) return `${Math.floor(s / 3_600)}h`;
  if (s >= 60) return `${Math.floor(s / 60)}m`;
  return `${s}s`;
}
