/**
 * Everything `vfbroker doctor` looks at, behind one interface, so that every check runs the same
 * against a simulated host in tests and against the real one (host-environment.ts builds that).
 * Each member documents its shell equivalent.
 */
import type { BrokerStatus, PfSummary } from '../broker/api.js';
import type { BrokerConfig } from '../config/broker-config.js';
import type { VfbError } from '../errors.js';
import type { HookInstallation } from '../install/inspect.js';
import type { Sysfs } from '../sysfs/sysfs.js';

/** The QEMU that libvirt runs when a guest names no `<emulator>`, and the one checked without a guest. */
export const DEFAULT_EMULATOR = 'qemu-system-x86_64';

/** The broker's read-only members the doctor calls (BrokerClient has them). */
export interface BrokerQuery {
  status(): Promise<BrokerStatus>;
  listPfs(): Promise<PfSummary[]>;
  close(): void;
}

/** broker.yaml, resolved, or why it could not be. */
export type ConfigOutcome =
  | { readonly path: string; readonly config: BrokerConfig }
  | { readonly path: string; readonly error: VfbError };

/** What dmesg shows (message text only, oldest first), or why it cannot be read. */
export type KernelLog =
  | { readonly readable: true; readonly lines: readonly string[] }
  | { readonly readable: false; readonly reason: string };

export interface DoctorEnvironment {
  /** PCI sysfs: the kernel's, or the simulator broker.yaml names. */
  readonly sysfs: Sysfs;
  readonly config: ConfigOutcome;
  /** `uname -r` */
  readonly kernelRelease: string;
  /** A connection to the broker; rejects with a VfbError when it is not reachable. */
  connectBroker(): Promise<BrokerQuery>;
  /** `virsh dumpxml --domain NAME --inactive`: the guest's persistent definition. */
  guestDefinition(name: string): Promise<string>;
  /** `EMULATOR --version`'s output; NOT_FOUND when the program is not installed. */
  emulatorVersion(emulator: string): Promise<string>;
  /** `test -d /dev/vfio/devices`: whether the kernel offers the VFIO cdev (iommufd) path. */
  vfioCdevPresent(): Promise<boolean>;
  /** `dmesg` */
  kernelLog(): Promise<KernelLog>;
  /**
   * `vfbroker install --dry-run`, for the hook, its settings and its cache directory only; null on a
   * simulated host, whose libvirt is not the host's.
   */
  hookInstallation(): Promise<HookInstallation | null>;
}
