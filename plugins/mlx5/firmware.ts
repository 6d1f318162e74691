/**
 * ConnectX firmware decides how many VFs the PF can have (SRIOV_EN, NUM_OF_VFS; sriov_totalvfs
 * follows them after a reboot). When mstconfig (Debian: mstflint) is installed the plan checks them
 * and, when they are wrong, prints the exact command that fixes them.
 */
import { VfbError, isVfbError } from '../../src/errors.js';
import type { PciAddress } from '../../src/pci/address.js';
import type { PluginContext } from '../../src/plugins/contract.js';

const MSTCONFIG_TIMEOUT_MS = 30_000;

export interface FirmwareSriov {
  readonly enabled: boolean;
  readonly numVfs: number;
}

/** Reads `mstconfig -d <bdf> q` output: `SRIOV_EN  True(1)`, `NUM_OF_VFS  8` (next-boot values). */
function parseMstconfigQuery(output: string): FirmwareSriov | null {
  const enabled = /^\s*SRIOV_EN\s+(\S+)/m.exec(output)?.[1];
  const numVfs = /^\s*NUM_OF_VFS\s+(\d+)/m.exec(output)?.[1];
  if (enabled === undefined || numVfs === undefined) return null;
  return { enabled: /^(true|1)\b|\(1\)$/i.test(enabled), numVfs: Number(numVfs) };
}

/** Returns notes for the plan; throws when the firmware cannot give `vfs` VFs. */
export async function checkFirmware(ctx: PluginContext, pf: PciAddress, vfs: number): Promise<string[]> {
  let output: string;
  try {
    const result = await ctx.runner.run(['mstconfig', '-d', pf, 'q'], { timeoutMs: MSTCONFIG_TIMEOUT_MS });
    if (result.code !== 0)
      return [
        `firmware SR-IOV settings not checked: \`mstconfig -d ${pf} q\` exited with status ${result.code ?? 'none'}`,
      ];
    output = result.stdout;
  } catch (err) {
    if (isVfbError(err, 'NOT_FOUND'))
      return ['firmware SR-IOV settings not checked: mstconfig is not installed (Debian package mstflint)'];
    throw err;
  }
  const firmware = parseMstconfigQuery(output);
  if (firmware === null)
    return [`firmware SR-IOV settings not checked: \`mstconfig -d ${pf} q\` shows no SRIOV_EN or NUM_OF_VFS`];
  if (firmware.enabled && firmware.numVfs >= vfs) return [];
  const fix = `mstconfig -d ${pf} set SRIOV_EN=1 NUM_OF_VFS=${vfs}`;
  throw new VfbError(
    'INVALID_ARGUMENT',
    `PF ${pf}: the firmware has SRIOV_EN=${firmware.enabled ? 1 : 0} NUM_OF_VFS=${firmware.numVfs}, ${vfs} VFs need SRIOV_EN=1 NUM_OF_VFS>=${vfs}: run \`${fix}\` and reboot`,
    {
      hint: `${fix}, then reboot (or \`mlxfwreset -d ${pf} reset\`)`,
      details: { firmwareVfs: firmware.numVfs, requested: vfs },
    },
  );
}
