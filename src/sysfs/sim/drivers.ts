/**
 * The drivers the simulator knows by name, each modelled on its kernel source. A host fixture lists
 * which of them are loaded; it names them and cannot change them, so every fixture that says `igb`
 * gets the same igb.
 *
 * Sources (Linux 6.1–6.12):
 * - igb: igb_main.c — igb_probe_vfs calls pci_sriov_set_totalvfs(pdev, 7): the 82576 reports TotalVFs
 *   8, but while igb is bound sriov_totalvfs reads 7 and sriov_numvfs refuses 8 with ERANGE before
 *   igb is asked (its own EPERM above 7 is reachable only through its max_vfs module parameter);
 *   igb_remove → igb_disable_sriov removes the VFs.
 * - Of the other drivers modelled here, none calls pci_sriov_set_totalvfs (mlx5_core reads TotalVFs
 *   and keeps it). ixgbe, not modelled, does: 63 of the 82599's 64.
 * - igbvf: igbvf/netdev.c id table (82576 VF 10ca, 82576 QT VF 152d, I350 VF 1520).
 * - vfio-pci: vfio_pci.c / vfio_pci_core.c — only driver_override matches it; sriov_configure needs
 *   enable_sriov=Y (else ENOENT); probe refuses a PF with VFs (EBUSY); remove disables SR-IOV.
 * - mlx5_core: drives both the ConnectX PF and its VFs; remove_one → mlx5_sriov_disable.
 * - pci-pf-stub: pci_sriov_configure_simple and no remove, so VFs survive an unbind
 *   ("driver left SR-IOV enabled after remove", pci_iov_remove).
 */
import type { DriverModel, PciId } from './state.js';

const intel = (...devices: number[]): PciId[] => devices.map((device) => ({ vendor: 0x8086, device }));
const mellanox = (...devices: number[]): PciId[] => devices.map((device) => ({ vendor: 0x15b3, device }));

export const BUILTIN_DRIVERS: readonly DriverModel[] = [
  {
    name: 'igb',
    module: 'igb',
    // 82576 family (REFERENCE.md §3).
    ids: intel(0x10c9, 0x10e6, 0x10e7, 0x10e8, 0x150a, 0x150d, 0x1518, 0x1526),
    kind: 'kernel',
    sriovConfigure: true,
    setsTotalVfs: 7,
    removeDisablesSriov: true,
  },
  {
    name: 'igbvf',
    module: 'igbvf',
    ids: intel(0x10ca, 0x152d, 0x1520),
    kind: 'kernel',
    sriovConfigure: false,
    setsTotalVfs: null,
    removeDisablesSriov: false,
  },
  {
    name: 'vfio-pci',
    module: 'vfio_pci',
    ids: [],
    kind: 'vfio-pci',
    sriovConfigure: true,
    setsTotalVfs: null,
    removeDisablesSriov: true,
  },
  {
    name: 'mlx5_core',
    module: 'mlx5_core',
    // ConnectX-5 PF/VF and ConnectX-5 Ex PF/VF.
    ids: mellanox(0x1017, 0x1018, 0x1019, 0x101a),
    kind: 'kernel',
    sriovConfigure: true,
    setsTotalVfs: null,
    removeDisablesSriov: true,
  },
  {
    name: 'pci-pf-stub',
    module: 'pci_pf_stub',
    ids: [{ vendor: 0x1d0f, device: 0x0053 }],
    kind: 'kernel',
    sriovConfigure: true,
    setsTotalVfs: null,
    removeDisablesSriov: false,
  },
];

/**
 * Module parameters that sysfs shows (those with a non-zero permission in module_param), with their
 * defaults as read back. igb's max_vfs and debug have permission 0: they are not in /sys/module.
 */
export const MODULE_PARAMETERS: Readonly<Record<string, Readonly<Record<string, ParameterSpec>>>> = {
  vfio_pci: {
    enable_sriov: { type: 'bool', default: 'N' },
    disable_idle_d3: { type: 'bool', default: 'N' },
    disable_vga: { type: 'bool', default: 'N' },
    disable_denylist: { type: 'bool', default: 'N' },
    nointxmask: { type: 'bool', default: 'N' },
  },
};

interface ParameterSpec {
  readonly type: 'bool';
  readonly default: 'Y' | 'N';
}

export function builtinDriver(name: string): DriverModel | undefined {
  return BUILTIN_DRIVERS.find((d) => d.name === name);
}
