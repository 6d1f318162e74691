/**
 * Check `qemu`: the QEMU libvirt runs knows the vf-token property (QEMU 8.1 and later). Older QEMU
 * opens a VF without a token, and the kernel refuses a VF of a vfio-pci PF opened that way.
 */
import { isVfbError, toVfbError } from '../../errors.js';
import type { DoctorContext } from '../context.js';
import { DEFAULT_EMULATOR } from '../environment.js';
import { findings, type Finding } from '../finding.js';
import { atLeast, formatVersion, parseVersion } from '../version.js';

const BANNER = /QEMU emulator version (\d+\.\d+(?:\.\d+)?)/;

export async function checkQemu(ctx: DoctorContext): Promise<Finding> {
  const guest = ctx.guest && 'view' in ctx.guest ? ctx.guest.view : null;
  const emulator = guest?.emulator ?? DEFAULT_EMULATOR;
  const f = findings('qemu', emulator);
  let output: string;
  try {
    output = await ctx.env.emulatorVersion(emulator);
  } catch (err) {
    const e = toVfbError(err);
    if (isVfbError(e, 'NOT_FOUND') && guest === null) {
      return f('skip', `${emulator} is not installed`, 'only libvirt guests need QEMU to present a VF token');
    }
    return f(
      'fail',
      `cannot run ${emulator} --version: ${e.message}`,
      'libvirt cannot start a guest with it either',
      e.hint,
    );
  }
  const match = BANNER.exec(output);
  const version = match?.[1] === undefined ? null : parseVersion(match[1]);
  if (version === null) return f('skip', `${emulator} --version does not say which QEMU it is`);
  const qemu = `QEMU ${formatVersion(version)} (${emulator})`;
  if (atLeast(version, 8, 1)) return f('ok', `${qemu} supports the vf-token property`);
  return f(
    'fail',
    `${qemu} has no vf-token property`,
    'QEMU presents a VF token from 8.1 on; an older one opens the VF without it, and the kernel refuses a VF of a vfio-pci PF opened so (EACCES, "VF token required to access device")',
    'upgrade QEMU to 8.1 or later (Debian and Ubuntu: the package qemu-system-x86)',
  );
}
