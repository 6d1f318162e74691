/**
 * Check `kernel-log`: the kernel's own account of refused VF opens. vfio-pci answers a wrong or
 * missing token with EACCES and nothing else but a rate-limited line in dmesg
 * (vfio_pci_core.c, vfio_pci_validate_vf_token), so that line is the best evidence of why a VF
 * refused to open. The latest one for the VFs in question is quoted.
 */
import type { PciAddress } from '../../pci/address.js';
import type { DoctorContext } from '../context.js';
import { findings, type Finding } from '../finding.js';
import type { PfGroup } from '../scope.js';

/** The kernel's messages, and what each one means. */
interface Refusal {
  readonly message: string;
  readonly why: string;
  /** The VF must be opened without a token (its PF is not on vfio-pci). */
  readonly tokenless?: true;
}

const REFUSALS: readonly Refusal[] = [
  {
    message: 'VF token required to access device',
    why: 'the VF was opened without a token: a guest definition without vf-token, QEMU older than 8.1, or a DPDK application without --vfio-vf-token',
  },
  {
    message: 'Incorrect VF token provided for device',
    why: 'the VF was opened with a token that is not its PF’s: a definition written before a rotation, or a token typed in by hand',
  },
  {
    message: 'VF token incorrectly provided, PF not bound to vfio-pci',
    why: 'a token was given for a VF whose PF is not on vfio-pci, and the kernel answers that with EINVAL: such a VF is opened without one',
    tokenless: true,
  },
];

const LINE = /([0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): (.*)$/;

/** One finding for the whole host when the log cannot be read, else one per PF group. */
export function checkKernelLogReadable(ctx: DoctorContext): Finding | null {
  if (ctx.kernelLog.readable) return null;
  return findings('kernel-log', null)(
    'skip',
    `the kernel log is not readable (${ctx.kernelLog.reason})`,
    'vfio-pci reports a refused VF open only there',
    'run vfbroker doctor as root',
  );
}

export function checkKernelLog(ctx: DoctorContext, group: PfGroup): Finding | null {
  if (!ctx.kernelLog.readable || group.vfs.length === 0) return null;
  const only = group.vfs.length === 1 ? group.vfs[0] : undefined;
  const f = findings('kernel-log', only ?? group.pf);
  const which = only === undefined ? `the VFs of PF ${group.pf}` : `VF ${only}`;
  const vfs = new Set<string>(group.vfs);
  const hits = ctx.kernelLog.lines.flatMap((line) => refusalIn(line, vfs));
  const latest = hits.at(-1);
  if (latest === undefined) return f('ok', `the kernel log shows no refused open of ${which}`);
  return f(
    'warn',
    `the kernel refused to open ${which} ${hits.length} time(s); the latest: "${latest.line}"`,
    `${latest.refusal.why} (the kernel rate-limits these lines, so some refusals may be missing)`,
    fixFor(ctx, latest),
  );
}

interface Hit {
  readonly line: string;
  readonly refusal: Refusal;
  readonly vf: PciAddress;
}

function refusalIn(line: string, vfs: ReadonlySet<string>): Hit[] {
  const m = LINE.exec(line);
  const refusal = REFUSALS.find((r) => r.message === m?.[2]);
  if (!m?.[1] || !vfs.has(m[1]) || refusal === undefined) return [];
  return [{ line, refusal, vf: m[1] as PciAddress }];
}

function fixFor(ctx: DoctorContext, { refusal, vf }: Hit): string {
  if (refusal.tokenless)
    return `open VF ${vf} without a token (no vf-token in a guest definition, no --vfio-vf-token)`;
  const guest = ctx.target.kind === 'guest' ? ctx.target.name : 'GUEST';
  return `a libvirt guest: vfbroker guest sync ${guest}; a DPDK application: --vfio-vf-token=$(vfbroker token get --vf ${vf})`;
}
