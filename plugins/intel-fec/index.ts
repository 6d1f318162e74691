/**
 * intel-fec: Intel FEC accelerators (ACC100, ACC200/VRB1, VRB2, N3000, N6000) configured by
 * pf_bb_config. The PF goes to vfio-pci, then `pf_bb_config <DEVICE> -p <bdf> -c <cfg> -v <token>`
 * configures it and stays as a daemon holding the PF (and with it the token); the VFs are created
 * after it. Rotation is drain: pf_bb_config opens the PF without a token, which the kernel refuses
 * while a VF is open, so it can only be restarted once no guest holds a VF.
 *
 * The token is on pf_bb_config's command line (`-v`): pf_bb_config has no other way to take it, so
 * it is visible in /proc/<pid>/cmdline to root (and to anyone when /proc is mounted without
 * hidepid). The README says so.
 */
import path from 'node:path';
import { z } from 'zod';
import { VfbError } from '../../src/errors.js';
import type { PluginManifest, PluginModule } from '../../src/plugins/contract.js';
import { lifecyclePlugin } from '../../src/plugins/lifecycle/engine.js';
import type { PfDriverSpec, PfTarget } from '../../src/plugins/lifecycle/spec.js';
import { VFIO_PCI } from '../../src/plugins/lifecycle/vfio.js';
import { secret, type Argv } from '../../src/process/argv.js';
import { exists, findDaemon, logEnd, logFile, readRunLog, socketFile, stopDaemon } from './daemon.js';
import { FEC_DEVICES, fecDevice } from './devices.js';

const manifest: PluginManifest = {
  name: 'intel-fec',
  apiVersion: '^1',
  ids: FEC_DEVICES.map((d) => d.pfId),
  needsToken: true,
  rotation: 'drain',
  description:
    'Intel FEC accelerators (ACC100, VRB1/2, N3000, N6000): PF on vfio-pci, configured and held by pf_bb_config',
};

const absolutePath = z
  .string()
  .min(2)
  .max(4096)
  .refine((p) => path.isAbsolute(p), 'expected an absolute path');

const options = z.strictObject({
  /** pf_bb_config's configuration file for this card (`-c`). */
  config: absolutePath,
  /** FFT lookup table (`-f`); required for VRB1 and VRB2, whose default is relative to the working directory. */
  fftLut: absolutePath.optional(),
  binary: z
    .string()
    .min(1)
    .max(4096)
    .refine((b) => path.isAbsolute(b) || !b.includes('/'), 'expected an absolute path or a bare command name')
    .default('pf_bb_config'),
  /** Where this pf_bb_config build writes pf_bb_cfg_<bdf>.log (compiled in; /var/log upstream). */
  logDirectory: absolutePath.default('/var/log'),
  /** Where it creates pf_bb_config.<bdf>.sock (compiled in; /tmp upstream). */
  socketDirectory: absolutePath.default('/tmp'),
  timeoutMs: z.number().int().min(1_000).max(600_000).default(60_000),
});
type Options = z.output<typeof options>;

const ACC100_IDLE_D3 = {
  parameter: 'disable_idle_d3',
  why: 'the ACC100 loses its pf_bb_config configuration when vfio-pci lets it drop to D3 while idle',
};

function commandLine(target: PfTarget<Options>, token: string): Argv {
  const device = fecDevice(target.deviceId);
  const { binary, config, fftLut } = target.options;
  // Always -p: without it and with several cards, pf_bb_config asks on stdin which one to use.
  return [
    binary,
    device.device,
    '-p',
    target.address,
    '-c',
    config,
    '-v',
    secret(token),
    ...(fftLut === undefined ? [] : ['-f', fftLut]),
  ];
}

function checkDevice(target: PfTarget<Options>): void {
  const device = fecDevice(target.deviceId);
  if (!device.setsToken) {
    throw new VfbError(
      'INVALID_ARGUMENT',
      `PF ${target.address} (${device.label}): pf_bb_config does not open ${device.device} through VFIO, so it cannot set a VF token and the VFs would stay unusable on vfio-pci`,
      {
        hint: 'run this card without vfio-pci (pf_bb_config without -v, PF on pci-pf-stub) outside vfbroker',
      },
    );
  }
  if (device.fftLut && target.options.fftLut === undefined) {
    throw new VfbError(
      'CONFIG_INVALID',
      `plugin intel-fec, PF ${target.address}: options.fftLut is required for ${device.device}`,
      {
        hint: `give the absolute path of the FFT table, e.g. /opt/pf-bb-config/${device.device.toLowerCase()}/srs_fft_windows_coefficient.bin`,
      },
    );
  }
}

function daemonDriver(): PfDriverSpec<Options> {
  return {
    starts: 'before-vfs',
    describe: (target) => `pf_bb_config ${fecDevice(target.deviceId).device} (daemon)`,
    async state(ctx, target) {
      const pid = await findDaemon(ctx, target.options, target.address);
      const socket = socketFile(target.options, target.address);
      const hasSocket = await exists(socket);
      if (pid !== null) {
        return {
          running: true,
          pid,
          detail: `pf_bb_config daemon pid ${pid}${hasSocket ? '' : `, no command socket ${socket}`}`,
          lastExit: null,
        };
      }
      const detail = hasSocket
        ? `pf_bb_config is not running (stale command socket ${socket})`
        : 'pf_bb_config is not running';
      return { running: false, pid: null, detail, lastExit: null };
    },
    async start(ctx, target, token) {
      const log = logFile(target.options, target.address);
      const from = await logEnd(log);
      const argv = commandLine(target, token);
      const result = await ctx.runner.run(argv, { timeoutMs: target.options.timeoutMs });
      const verdict = await readRunLog(log, from, target.address, [token]);
      if (result.code !== 0 || !verdict.ok) {
        const why = verdict.ok
          ? `exited with status ${result.code ?? 'none'}`
          : (verdict.line ?? errorLine(result.stdout) ?? 'no result in its log');
        throw new VfbError('UNAVAILABLE', `pf_bb_config could not configure PF ${target.address}: ${why}`, {
          hint: `read ${log}; check options.config for PF ${target.address}`,
        });
      }
      const pid = await findDaemon(ctx, target.options, target.address);
      if (pid === null) {
        throw new VfbError(
          'UNAVAILABLE',
          `pf_bb_config configured PF ${target.address} but its daemon is not running`,
          { hint: `read ${log}` },
        );
      }
      ctx.logger.info({ pid }, 'pf_bb_config configured the PF and holds it');
    },
    async stop(ctx, target) {
      const pid = await findDaemon(ctx, target.options, target.address);
      if (pid !== null) await stopDaemon(ctx, pid);
    },
    // The daemon outlives the broker on purpose: it holds the token while guests use the VFs.
    close: () => Promise.resolve(),
  };
}

function errorLine(text: string): string | null {
  return text.split('\n').find((l) => l.includes('ERR')) ?? null;
}

const intelFec: PluginModule = {
  manifest,
  create: () =>
    lifecyclePlugin({
      manifest,
      options,
      layout: (target) => {
        const device = fecDevice(target.deviceId);
        return {
          pfDriver: VFIO_PCI,
          vfDriver: VFIO_PCI,
          vfLimit: {
            max: device.maxVfs,
            why: `pf_bb_config configures at most ${device.maxVfs} VF bundles on the ${device.label}`,
          },
          vfioParameters: device.noIdleD3 ? [ACC100_IDLE_D3] : [],
        };
      },
      preflight: (_ctx, target) => {
        checkDevice(target);
        return Promise.resolve([]);
      },
      driver: daemonDriver(),
    }),
};

export default intelFec;
