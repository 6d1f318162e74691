/**
 * The simulated kernel's state: plain JSON, so the persistence layer can write it to a file and
 * another process can read it back. The zod schema is the one definition of its shape; a state
 * file that does not match it is refused rather than half-used.
 */
import * as z from 'zod';

const u16 = z.number().int().min(0).max(0xffff);
const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);
const address = z.string().regex(/^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);

export const RESET_METHODS = ['device_specific', 'acpi', 'flr', 'af_flr', 'pm', 'bus', 'cxl_bus'] as const;
const resetMethod = z.enum(RESET_METHODS);

const PciIdSchema = z.strictObject({ vendor: u16, device: u16 });
export type PciId = z.infer<typeof PciIdSchema>;

/** How a driver behaves, in the few respects the PCI core and vfbroker can observe. */
const DriverModelSchema = z.strictObject({
  name,
  /** Its directory under /sys/module (`vfio-pci` → `vfio_pci`). */
  module: name,
  /** The IDs in its id_table; vfio-pci has none and binds only through driver_override. */
  ids: z.array(PciIdSchema),
  /** vfio-pci adds the VFIO behaviours: it captures VFs, refuses PFs with VFs, gates SR-IOV on enable_sriov. */
  kind: z.enum(['kernel', 'vfio-pci']),
  /** Whether it has a sriov_configure callback (without one, sriov_numvfs answers ENOENT). */
  sriovConfigure: z.boolean(),
  /**
   * What its probe passes to pci_sriov_set_totalvfs (igb: 7): sriov_totalvfs reads this while it is
   * bound, so sriov_numvfs refuses more with ERANGE. null when its probe leaves TotalVFs alone.
   */
  setsTotalVfs: u16.nullable(),
  /** Whether its remove() disables SR-IOV; pci-pf-stub's does not, so its VFs outlive the unbind. */
  removeDisablesSriov: z.boolean(),
});
export type DriverModel = z.infer<typeof DriverModelSchema>;

const SriovStateSchema = z.strictObject({
  /** TotalVFs of the SR-IOV capability: what the device offers. */
  totalVfs: u16.min(1),
  /**
   * The kernel's driver_max_VFs: TotalVFs, or the lower limit the bound driver set at probe. It is
   * what sriov_totalvfs shows and what sriov_numvfs checks; unbinding the driver restores TotalVFs.
   */
  driverMaxVfs: u16,
  offset: u16.min(1),
  stride: u16,
  vfDevice: u16,
  numVfs: u16,
  autoprobe: z.boolean(),
});
export type SriovState = z.infer<typeof SriovStateSchema>;

const DeviceStateSchema = z.strictObject({
  address,
  vendor: u16,
  device: u16,
  class: z.number().int().min(0).max(0xffffff),
  numaNode: z.number().int().min(-1),
  iommuGroup: z.number().int().min(0).nullable(),
  resetMethods: z.array(resetMethod),
  supportedResetMethods: z.array(resetMethod),
  driver: name.nullable(),
  driverOverride: z.string().nullable(),
  /** The PF of a VF; null for every other device. */
  physfn: address.nullable(),
  /** The SR-IOV capability of a PF; null for every other device. */
  sriov: SriovStateSchema.nullable(),
  /**
   * A PF bound to vfio-pci has a VF token from bind to unbind. Only its SHA-256 is kept (the state
   * may be written to a file); null is the random token vfio-pci starts with, which nobody knows.
   */
  vfTokenSha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable()
    .optional(),
});
export type DeviceState = z.infer<typeof DeviceStateSchema>;

export const SimStateSchema = z.strictObject({
  /** Raised whenever the shape changes, so a state file from an older build is refused, not half-read. */
  version: z.literal(2),
  /** Loaded drivers, in the order they registered: the order drivers_probe tries them in. */
  drivers: z.array(DriverModelSchema),
  /** /sys/module/<module>/parameters/<param> → value as read back ("Y", "N", "0"…). */
  modules: z.record(name, z.record(name, z.string())),
  devices: z.record(address, DeviceStateSchema),
  vfio: z.strictObject({
    nextHandle: z.number().int().min(1),
    /** Open VFIO device fds: handle → device address. */
    open: z.array(z.strictObject({ handle: z.number().int().min(1), address })),
  }),
  /** What dmesg would show, oldest first, without timestamps. */
  kernelLog: z.array(z.string()),
});
export type SimState = z.infer<typeof SimStateSchema>;

/** An independent copy (the state is plain JSON). */
export function cloneState(state: SimState): SimState {
  return structuredClone(state);
}
