import type { Command } from 'commander';
import { outputFor } from '../context.js';
import { VfbError } from '../../errors.js';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the broker on a simulated host and watch the libvirt hook gate guests (no root, Vault or hardware)',
    )
    .option('--keep', 'leave the broker, the PF driver stand-ins and the bus running at the end', false)
    .option('--stop <dir>', 'stop a demo left running by --keep and remove its directory')
    .addHelpText(
      'after',
      `
Starts a private D-Bus system bus, the real broker (\`vfbroker serve\`) on the simulated host of
etc/vfbroker/simulated-host.yaml with stand-ins for its PF drivers, and runs the libvirt hook as
libvirt would for three example guests (src/demo/assets/): accepted, refused as not authorised,
refused for a stale token; then rotates a token and syncs a guest. Everything it starts is stopped
and its directory removed at the end, on failure and on Ctrl-C. Tokens are never printed.
--json prints one document: {setup, pfs, guests, steps, kept}, steps being the hook runs (guest,
op, outcome, verdict, refusals, libvirtError), token status, rotate and sync steps in order; kept
is null unless --keep. --stop prints {stopped: {processes, directory}}.

Examples:
  vfbroker demo
  vfbroker demo --json
  vfbroker demo --keep
  vfbroker demo --stop /tmp/vfbroker-demo-AbC123`,
    )
    .action(async (opts: { keep: boolean; stop?: string }, cmd: Command) => {
      const out = outputFor(cmd);
      if (opts.stop !== undefined && opts.keep) {
        throw new VfbError('INVALID_ARGUMENT', 'give --keep to start a demo or --stop to end one, not both');
      }
      if (opts.stop !== undefined) {
        const { stopKeptDemo } = await import('../../demo/teardown.js');
        const stopped = await stopKeptDemo(opts.stop);
        out.result([`stopped ${stopped.processes} process(es) and removed ${stopped.directory}`], {
          stopped,
        });
        return;
      }
      const { runDemo } = await import('../../demo/scenario.js');
      const { Transcript } = await import('../../demo/transcript.js');
      await runDemo({
        keep: opts.keep,
        transcript: new Transcript(process.stdout, { json: out.json, colour: out.colour }),
        notify: (line) => out.warn(line),
      });
    });
}
