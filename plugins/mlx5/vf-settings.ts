/**
 * Per-VF settings made on the PF's netdev: `ip link set dev <pf> vf <n> mac … trust … spoofchk …
 * vlan …`. The current values come from `ip -j link show dev <pf>` (vfinfo_list), so the step
 * changes only what differs and status can say what is not as configured.
 */
import { z } from 'zod';
import { VfbError, isVfbError } from '../../src/errors.js';
import type { PciAddress } from '../../src/pci/address.js';
import type { PluginContext } from '../../src/plugins/contract.js';
import type { DeviceStep, PfTarget } from '../../src/plugins/lifecycle/spec.js';
import { renderArgv, type Argv } from '../../src/process/argv.js';
import { requireSuccess } from '../../src/process/runner.js';

const IP_TIMEOUT_MS = 10_000;

export const vfSettingSchema = z.strictObject({
  vf: z.number().int().min(0).max(255),
  mac: z
    .string()
    .regex(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/, 'expected a MAC address such as 02:00:00:00:00:01')
    .transform((m) => m.toLowerCase())
    .optional(),
  trust: z.boolean().optional(),
  spoofchk: z.boolean().optional(),
  vlan: z.number().int().min(0).max(4095).optional(),
});
export type VfSetting = z.output<typeof vfSettingSchema>;

/** What this step needs from the plugin's options. */
export interface VfSettingsOptions {
  readonly netdev?: string | undefined;
  readonly vfSettings: readonly VfSetting[];
}

interface CurrentVf {
  readonly mac: string | null;
  readonly vlan: number;
  readonly trust: boolean | null;
  readonly spoofchk: boolean | null;
}

export function vfSettingsStep<O extends VfSettingsOptions>(): DeviceStep<O> {
  return {
    name: 'vf-settings',
    phase: 'after-vfs',
    needsNoVfs: false,
    async check(ctx, target) {
      let netdev: string;
      try {
        netdev = await pfNetdev(ctx, target.address, target.options.netdev);
      } catch (err) {
        // Before the PF is back on mlx5_core it has no netdev; apply runs after the bind.
        if (!isVfbError(err, 'NOT_FOUND')) throw err;
        return { done: false, detail: err.message, change: describeAll(target) };
      }
      const current = await readVfs(ctx, netdev);
      const diffs = target.options.vfSettings.flatMap((s) => differences(s, current.get(s.vf)));
      return {
        done: diffs.length === 0,
        detail:
          diffs.length === 0
            ? `${target.options.vfSettings.length} VFs set as configured on ${netdev}`
            : diffs.join('; '),
        change: `on ${netdev}: ${diffs.join('; ')}`,
      };
    },
    describe: describeAll,
    async apply(ctx, target) {
      const netdev = await pfNetdev(ctx, target.address, target.options.netdev);
      const current = await readVfs(ctx, netdev);
      for (const setting of target.options.vfSettings) {
        if (differences(setting, current.get(setting.vf)).length === 0) continue;
        const argv: Argv = [
          'ip',
          'link',
          'set',
          'dev',
          netdev,
          'vf',
          String(setting.vf),
          ...settingArgs(setting),
        ];
        requireSuccess(argv, await ctx.runner.run(argv, { timeoutMs: IP_TIMEOUT_MS }));
      }
    },
  };
}

/** VF indexes must exist once the VFs are enabled. */
export function checkVfIndexes(target: PfTarget<VfSettingsOptions>): void {
  const bad = target.options.vfSettings.find((s) => s.vf >= target.vfs);
  if (bad) {
    throw new VfbError(
      'CONFIG_INVALID',
      `plugin mlx5, PF ${target.address}: options.vfSettings names VF ${bad.vf}, but vfs is ${target.vfs}`,
      {
        hint: `VF indexes run from 0 to ${Math.max(0, target.vfs - 1)}`,
      },
    );
  }
}

function settingArgs(s: VfSetting): string[] {
  const onOff = (b: boolean) => (b ? 'on' : 'off');
  return [
    ...(s.mac === undefined ? [] : ['mac', s.mac]),
    ...(s.trust === undefined ? [] : ['trust', onOff(s.trust)]),
    ...(s.spoofchk === undefined ? [] : ['spoofchk', onOff(s.spoofchk)]),
    ...(s.vlan === undefined ? [] : ['vlan', String(s.vlan)]),
  ];
}

function describeAll(target: PfTarget<VfSettingsOptions>): string {
  return target.options.vfSettings.map((s) => `VF ${s.vf} ${settingArgs(s).join(' ')}`).join('; ');
}

function differences(wanted: VfSetting, current: CurrentVf | undefined): string[] {
  if (!current) return [`VF ${wanted.vf} does not exist`];
  const out: string[] = [];
  type Value = string | number | boolean | null | undefined;
  const show = (v: Value) =>
    v === null || v === undefined ? 'unknown' : typeof v === 'boolean' ? (v ? 'on' : 'off') : String(v);
  const check = (key: string, want: Value, have: Value) => {
    if (want !== undefined && want !== have) out.push(`VF ${wanted.vf} ${key} ${show(have)} → ${show(want)}`);
  };
  check('mac', wanted.mac, current.mac);
  check('trust', wanted.trust, current.trust);
  check('spoofchk', wanted.spoofchk, current.spoofchk);
  check('vlan', wanted.vlan, current.vlan);
  return out;
}

async function readVfs(ctx: PluginContext, netdev: string): Promise<Map<number, CurrentVf>> {
  const argv: Argv = ['ip', '-j', 'link', 'show', 'dev', netdev];
  const result = requireSuccess(argv, await ctx.runner.run(argv, { timeoutMs: IP_TIMEOUT_MS }));
  const links = parseJsonArray(result.stdout, argv);
  const list = (links[0] as { vfinfo_list?: unknown } | undefined)?.vfinfo_list;
  const vfs = new Map<number, CurrentVf>();
  for (const entry of Array.isArray(list) ? (list as Record<string, unknown>[]) : []) {
    if (typeof entry['vf'] !== 'number') continue;
    const vlanList = entry['vlan_list'];
    const firstVlan = Array.isArray(vlanList)
      ? (vlanList[0] as { vlan?: unknown } | undefined)?.vlan
      : entry['vlan'];
    vfs.set(entry['vf'], {
      mac: typeof entry['address'] === 'string' ? entry['address'].toLowerCase() : null,
      vlan: typeof firstVlan === 'number' ? firstVlan : 0,
      trust: typeof entry['trust'] === 'boolean' ? entry['trust'] : null,
      spoofchk: typeof entry['spoofchk'] === 'boolean' ? entry['spoofchk'] : null,
    });
  }
  return vfs;
}

/**
 * The PF's netdev: `options.netdev`, else the one netdev whose parent device is the PF
 * (`ip -d -j link show`: parentbus/parentdev), leaving out switchdev representors (pf0vf1…).
 */
async function pfNetdev(ctx: PluginContext, pf: PciAddress, configured: string | undefined): Promise<string> {
  if (configured !== undefined) return configured;
  const argv: Argv = ['ip', '-d', '-j', 'link', 'show'];
  const result = requireSuccess(argv, await ctx.runner.run(argv, { timeoutMs: IP_TIMEOUT_MS }));
  const names = parseJsonArray(result.stdout, argv)
    .map((l) => l as Record<string, unknown>)
    .filter((l) => l['parentbus'] === 'pci' && l['parentdev'] === pf)
    .filter(
      (l) => !/^pf\d+(vf|sf)\d+$/.test(typeof l['phys_port_name'] === 'string' ? l['phys_port_name'] : ''),
    )
    .map((l) => l['ifname'])
    .filter((n): n is string => typeof n === 'string');
  if (names.length === 1 && names[0] !== undefined) return names[0];
  throw new VfbError(
    'NOT_FOUND',
    names.length === 0
      ? `PF ${pf} has no network interface; mlx5_core must be bound to set VF options`
      : `PF ${pf} has several network interfaces: ${names.join(', ')}`,
    { hint: `set options.netdev for PF ${pf} in /etc/vfbroker/broker.yaml` },
  );
}

function parseJsonArray(text: string, argv: Argv): unknown[] {
  try {
    const parsed: unknown = JSON.parse(text);
    if (Array.isArray(parsed)) return parsed;
  } catch {
    // reported below
  }
  throw new VfbError(
    'UNAVAILABLE',
    `\`${renderArgv(argv)}\` did not print a JSON array (is iproute2 older than 4.14?)`,
  );
}
