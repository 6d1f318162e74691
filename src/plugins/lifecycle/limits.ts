/**
 * The VF count check: against the device (sriov_totalvfs) and against the driver's own limit, which
 * can be lower than what the hardware reports (the kernel igb driver: 7 on an 82576 that says 8).
 * Refusing here, with the reason, beats the bare EPERM or ERANGE the kernel would answer.
 */
import { VfbError } from '../../errors.js';
import type { PciAddress } from '../../pci/address.js';

export interface VfLimit {
  readonly max: number;
  /** Why, in words an operator can check: "the kernel igb driver keeps one queue pool for the PF…". */
  readonly why: string;
}

export function checkVfCount(
  pf: PciAddress,
  deviceId: string,
  requested: number,
  totalVfs: number | null,
  limit: VfLimit | null,
  options: { readonly pfLeavesDriver: boolean },
): void {
  // The count comes from broker.yaml's `vfs:` or from a PF owner's SetNumVfs: the hint fits both.
  const refuse = (why: string, max?: number): never => {
    throw new VfbError('INVALID_ARGUMENT', `PF ${pf} (${deviceId}): ${why}`, {
      hint:
        max === undefined
          ? 'check the PF address in /etc/vfbroker/broker.yaml'
          : `ask for at most ${max} VFs of PF ${pf} (vfs: in /etc/vfbroker/broker.yaml, or SetNumVfs)`,
      details: { requested, ...(max === undefined ? {} : { max }) },
    });
  };
  if (!Number.isSafeInteger(requested) || requested < 0)
    refuse(`${requested} is not a VF count`, totalVfs ?? 0);
  if (totalVfs === null) refuse('the device has no SR-IOV capability (no sriov_totalvfs in sysfs)');
  const exceeded = limit !== null && requested > limit.max ? limit : null;
  const refuseOver = (l: VfLimit) => refuse(`${requested} VFs requested, at most ${l.max}: ${l.why}`, l.max);
  // sriov_totalvfs shows the limit of the driver bound now (igb lowers it to 7 while it holds an
  // 82576); when the PF is about to leave that driver, the plugin's limit is the one that holds.
  if (exceeded && options.pfLeavesDriver) refuseOver(exceeded);
  if (requested > (totalVfs ?? 0))
    refuse(`${requested} VFs requested, the device offers ${totalVfs ?? 0} (sriov_totalvfs)`, totalVfs ?? 0);
  if (exceeded) refuseOver(exceeded);
}
