/** The doctor's two external programs, through the process runner: virsh and the guest's QEMU. */
import { Virsh } from '../libvirt/virsh.js';
import { requireSuccess, type ProcessRunner } from '../process/runner.js';
import type { DoctorEnvironment } from './environment.js';

const VERSION_TIMEOUT_MS = 10_000;

export function programProbes(
  runner: ProcessRunner,
): Pick<DoctorEnvironment, 'guestDefinition' | 'emulatorVersion'> {
  const virsh = new Virsh(runner);
  return {
    guestDefinition: (name) => virsh.dumpXmlInactive(name),
    emulatorVersion: async (emulator) => {
      const argv = [emulator, '--version'] as const;
      return requireSuccess(argv, await runner.run(argv, { timeoutMs: VERSION_TIMEOUT_MS })).stdout;
    },
  };
}
