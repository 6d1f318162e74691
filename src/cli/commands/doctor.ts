import { Option, type Command } from 'commander';
import { globals, outputFor } from '../context.js';
import { VfbError } from '../../errors.js';
import { parsePciAddress, type PciAddress } from '../../pci/address.js';
import type { DoctorTarget } from '../../doctor/context.js';

/** Exit status when a check failed; the error catalogue's statuses are for commands that could not run. */
const DOCTOR_FAILED_EXIT = 1;

const address = (v: string) => parsePciAddress(v, { lenient: true });

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('explain why a VF would refuse to open: host, PF, broker, guest and kernel checks')
    .addOption(
      new Option('--vf <address>', 'check one VF (or a PF and all its VFs)')
        .argParser(address)
        .conflicts('guest'),
    )
    .option('--guest <name>', 'check the VFs of a libvirt guest and its persistent definition', guestName)
    .addHelpText(
      'after',
      `
Without --vf or --guest, checks every VF of every PF in broker.yaml. Each finding is ✓ (ok),
! (warning: the VF opens, but without the token's protection or not for long), ✗ (failed: the VF
would refuse to open, or the guest to start) or - (not checked), with why it matters and the exact
fix. Reading the kernel log (refused opens) needs root.

Exit status: 0 when no check failed (warnings included), 1 when at least one did, 64 for a usage
error. --json prints one document: {target, kernelRelease, failed, summary, findings[]} with each
finding as {id, status, subject, what, why, fix}.

Examples:
  vfbroker doctor
  vfbroker doctor --vf 0000:3b:02.1
  vfbroker doctor --guest fec-du1 --json`,
    )
    .action(async (opts: { vf?: PciAddress; guest?: string }, cmd: Command) => {
      const out = outputFor(cmd);
      const g = globals(cmd);
      const target: DoctorTarget =
        opts.vf !== undefined
          ? { kind: 'vf', address: opts.vf }
          : opts.guest !== undefined
            ? { kind: 'guest', name: opts.guest }
            : { kind: 'host' };
      const [{ hostEnvironment }, { runDoctor }, { renderText, reportJson }] = await Promise.all([
        import('../../doctor/host-environment.js'),
        import('../../doctor/doctor.js'),
        import('../../doctor/render.js'),
      ]);
      const env = await hostEnvironment({
        configPath: g.config,
        callTimeoutMs: g.timeout,
        ...(g.bus === undefined ? {} : { busAddress: g.bus }),
      });
      const report = await runDoctor(env, target);
      out.result(renderText(report, out.colour), reportJson(report));
      if (report.failed) process.exitCode = DOCTOR_FAILED_EXIT;
    });
}

/** libvirt accepts almost any name; refuse only what no guest can be called. */
function guestName(v: string): string {
  if (v === '' || v.length > 256 || /[\0\n]/.test(v)) {
    throw new VfbError('INVALID_ARGUMENT', 'a guest name is 1 to 256 characters, without NUL or newline');
  }
  return v;
}
