/** The e-switch mode step: `devlink dev eswitch set pci/<bdf> mode switchdev|legacy`. */
import type { DeviceStep, PfTarget } from '../../src/plugins/lifecycle/spec.js';
import { requireSuccess } from '../../src/process/runner.js';
import { VfbError } from '../../src/errors.js';
import type { Argv } from '../../src/process/argv.js';

export type EswitchMode = 'legacy' | 'switchdev';

const DEVLINK_TIMEOUT_MS = 30_000;

export function eswitchStep<O>(mode: EswitchMode): DeviceStep<O> {
  const handle = (target: PfTarget<O>) => `pci/${target.address}`;
  return {
    name: 'eswitch-mode',
    phase: 'before-vfs',
    // mlx5 changes the mode reliably only without VFs, so the plan removes them first.
    needsNoVfs: true,
    async check(ctx, target) {
      const argv: Argv = ['devlink', '-j', 'dev', 'eswitch', 'show', handle(target)];
      const result = requireSuccess(argv, await ctx.runner.run(argv, { timeoutMs: DEVLINK_TIMEOUT_MS }));
      const current = parseMode(result.stdout, handle(target));
      return {
        done: current === mode,
        detail: `eswitch mode ${current}${current === mode ? '' : `, wanted ${mode}`}`,
        change: `eswitch mode ${current} → ${mode}`,
      };
    },
    describe: () => `eswitch mode ${mode}`,
    async apply(ctx, target) {
      const argv: Argv = ['devlink', 'dev', 'eswitch', 'set', handle(target), 'mode', mode];
      requireSuccess(argv, await ctx.runner.run(argv, { timeoutMs: DEVLINK_TIMEOUT_MS }));
    },
  };
}

/** `devlink -j dev eswitch show pci/X` prints {"dev":{"pci/X":{"mode":"legacy",…}}}. */
function parseMode(json: string, handle: string): string {
  try {
    const parsed = JSON.parse(json) as { dev?: Record<string, { mode?: unknown }> };
    const mode = parsed.dev?.[handle]?.mode;
    if (typeof mode === 'string') return mode;
  } catch {
    // fall through to the error below
  }
  throw new VfbError('UNAVAILABLE', `\`devlink -j dev eswitch show ${handle}\` printed no eswitch mode`);
}
