/**
 * igb: Intel 82576 PFs driven from userspace. The PF goes to vfio-pci, the VFs are created first,
 * then a configured DPDK application (net_e1000_igb) starts as the PF driver with the token and
 * answers the VFs' mailbox. vfbroker supervises it: an exit is noticed, logged and shown by status.
 * Rotation is drain: a DPDK PF application cannot take a new token without restarting.
 */
import path from 'node:path';
import { z } from 'zod';
import type { PluginManifest, PluginModule } from '../../src/plugins/contract.js';
import { lifecyclePlugin } from '../../src/plugins/lifecycle/engine.js';
import type { PfDriverSpec, PfTarget } from '../../src/plugins/lifecycle/spec.js';
import { DriverSupervisor } from '../../src/plugins/lifecycle/supervisor.js';
import { VFIO_PCI } from '../../src/plugins/lifecycle/vfio.js';
import { removeRuntimeFile, writeRuntimeSecret } from '../../src/plugins/runtime-file.js';
import { secret, type Argv, type ArgvElement } from '../../src/process/argv.js';
import { waitForLine } from '../../src/process/wait-line.js';
import type { PluginContext } from '../../src/plugins/contract.js';

const manifest: PluginManifest = {
  name: 'igb',
  apiVersion: '^1',
  // 82576 PFs: copper, fiber, serdes, quad-port, ET2, NS and NS serdes variants.
  ids: [
    '8086:10c9',
    '8086:10e6',
    '8086:10e7',
    '8086:10e8',
    '8086:150a',
    '8086:150d',
    '8086:1518',
    '8086:1526',
  ],
  needsToken: true,
  rotation: 'drain',
  description: 'Intel 82576: PF on vfio-pci, driven by a DPDK application (net_e1000_igb) given the token',
};

const VF_LIMIT = {
  max: 7,
  why: 'the 82576 has 8 queue pools and its PF driver keeps one for itself, so the kernel igb driver enables at most 7 VFs (igb_main.c lowers sriov_totalvfs to 7 while bound; the kernel refuses 8 with ERANGE)',
};

const STOP_DEADLINE_MS = 10_000;

const options = z.strictObject({
  /** The PF application and its arguments; the token argument is added by vfbroker. */
  command: z
    .array(z.string().min(1).max(4096))
    .min(1)
    .refine(
      (c) => c[0] !== undefined && (path.isAbsolute(c[0]) || !c[0].includes('/')),
      'the first element must be an absolute path or a bare command name',
    ),
  /** argv: `--vfio-vf-token=<uuid>`; file: `--vfio-vf-token-file=<path>` naming a 0600 file (for a wrapper). */
  tokenVia: z.enum(['argv', 'file']).default('argv'),
  /** A regular expression the application prints on stdout once it drives the PF; up waits for it. */
  readyPattern: z
    .string()
    .max(200)
    .refine((p) => isRegExp(p), 'not a valid regular expression')
    .optional(),
  startTimeoutMs: z.number().int().min(100).max(600_000).default(30_000),
});
type Options = z.output<typeof options>;

function isRegExp(pattern: string): boolean {
  try {
    new RegExp(pattern);
    return true;
  } catch {
    return false;
  }
}

function tokenFileName(target: PfTarget<Options>): string {
  return `${target.address}.vf-token`;
}

/** The token argument goes before a `--` (DPDK's EAL options end there), else at the end. */
function withTokenArgument(command: readonly string[], tokenArgument: ArgvElement): Argv {
  const [executable = '', ...rest] = command;
  const separator = rest.indexOf('--');
  const args =
    separator < 0
      ? [...rest, tokenArgument]
      : [...rest.slice(0, separator), tokenArgument, ...rest.slice(separator)];
  return [executable, ...args];
}

async function commandLine(ctx: PluginContext, target: PfTarget<Options>, token: string): Promise<Argv> {
  if (target.options.tokenVia === 'argv')
    return withTokenArgument(target.options.command, secret(token, '--vfio-vf-token='));
  const file = await writeRuntimeSecret(ctx.runtimeDirectory, tokenFileName(target), `${token}\n`);
  return withTokenArgument(target.options.command, `--vfio-vf-token-file=${file}`);
}

function dpdkDriver(): PfDriverSpec<Options> {
  const supervisor = new DriverSupervisor('DPDK PF application', STOP_DEADLINE_MS);
  return {
    starts: 'after-vfs',
    describe: (target) =>
      `${path.basename(target.options.command[0] ?? '')} (DPDK PF application, token via ${target.options.tokenVia})`,
    state: (_ctx, target) =>
      Promise.resolve(supervisor.status(target.address, (proc) => `running, pid ${proc.pid}`)),
    async start(ctx, target, token) {
      const argv = await commandLine(ctx, target, token);
      const { readyPattern, startTimeoutMs } = target.options;
      if (readyPattern === undefined) {
        await supervisor.start(ctx, target.address, argv);
        return;
      }
      const ready = new RegExp(readyPattern);
      await supervisor.start(ctx, target.address, argv, {
        ready: async (proc) => {
          await waitForLine(proc, (line) => ready.test(line), startTimeoutMs, `a line matching readyPattern`);
        },
      });
    },
    async stop(ctx, target) {
      await supervisor.stop(target.address);
      await removeRuntimeFile(ctx.runtimeDirectory, tokenFileName(target));
    },
    close: () => supervisor.closeAll(),
  };
}

const igb: PluginModule = {
  manifest,
  create: () =>
    lifecyclePlugin({
      manifest,
      options,
      layout: () => ({ pfDriver: VFIO_PCI, vfDriver: VFIO_PCI, vfLimit: VF_LIMIT, vfioParameters: [] }),
      driver: dpdkDriver(),
    }),
};

export default igb;
