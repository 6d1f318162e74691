import type { Command } from 'commander';
import { globals } from '../context.js';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the broker: bring the configured PFs up and serve org.vfbroker.Broker1 on D-Bus')
    .addHelpText(
      'after',
      `
Runs until SIGTERM or SIGINT (exit 0); SIGHUP reloads policy.yaml (an invalid policy is refused
and the previous one stays). Exits 1 when it loses the system bus, so systemd restarts it, and with
the error's status when it cannot start (78 for an invalid broker.yaml or policy.yaml). Logs are
JSON lines on stdout whatever --json says. Normally started by systemd (vfbroker.service).

Examples:
  vfbroker serve
  vfbroker serve --config ./broker.yaml --policy ./policy.yaml`,
    )
    .action(async (_opts, cmd: Command) => {
      const g = globals(cmd);
      const { serveUntilSignalled } = await import('../../broker/serve.js');
      process.exitCode = await serveUntilSignalled({ configPath: g.config, policyPath: g.policy });
    });
}
