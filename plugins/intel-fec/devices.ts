/**
 * The FEC accelerators pf_bb_config drives, keyed by PF ID (REFERENCE.md §3, intel/pf-bb-config;
 * the README lists their VF IDs).
 * `device` is the DEVICE argument pf_bb_config takes.
 */
import { VfbError } from '../../src/errors.js';

export interface FecDevice {
  readonly pfId: string;
  readonly device: 'ACC100' | 'VRB1' | 'VRB2' | 'FPGA_5GNR' | 'FPGA_LTE' | 'AGX100';
  readonly label: string;
  /** VF bundles pf_bb_config can configure on it. */
  readonly maxVfs: number;
  /** Needs vfio-pci's disable_idle_d3=1. */
  readonly noIdleD3: boolean;
  /** Takes an FFT lookup table (`-f`). */
  readonly fftLut: boolean;
  /**
   * Whether pf_bb_config opens this PF through VFIO and so can set the VF token. Its set_device()
   * gives FPGA_LTE no VFIO open: it maps BAR0 through sysfs, and `-v` would leave the kernel's
   * random token in place, so no VF could ever be opened.
   */
  readonly setsToken: boolean;
}

export const FEC_DEVICES: readonly FecDevice[] = [
  {
    pfId: '8086:0d5c',
    device: 'ACC100',
    label: 'Intel ACC100',
    maxVfs: 16,
    noIdleD3: true,
    fftLut: false,
    setsToken: true,
  },
  {
    pfId: '8086:57c0',
    device: 'VRB1',
    label: 'Intel ACC200 (vRAN Boost 1)',
    maxVfs: 16,
    noIdleD3: false,
    fftLut: true,
    setsToken: true,
  },
  {
    pfId: '8086:57c2',
    device: 'VRB2',
    label: 'Intel vRAN Boost 2',
    maxVfs: 16,
    noIdleD3: false,
    fftLut: true,
    setsToken: true,
  },
  {
    pfId: '8086:0d8f',
    device: 'FPGA_5GNR',
    label: 'Intel FPGA PAC N3000 (5G NR FEC)',
    maxVfs: 8,
    noIdleD3: false,
    fftLut: false,
    setsToken: true,
  },
  {
    pfId: '1172:5052',
    device: 'FPGA_LTE',
    label: 'Intel FPGA PAC N3000 (LTE FEC)',
    maxVfs: 8,
    noIdleD3: false,
    fftLut: false,
    setsToken: false,
  },
  {
    pfId: '8086:5799',
    device: 'AGX100',
    label: 'Intel FPGA SmartNIC N6000 (AGX100)',
    maxVfs: 8,
    noIdleD3: false,
    fftLut: false,
    setsToken: true,
  },
];

export function fecDevice(pfId: string): FecDevice {
  const found = FEC_DEVICES.find((d) => d.pfId === pfId);
  // The engine only hands this plugin PFs whose ID its manifest lists, which is this table.
  if (!found) throw new VfbError('INTERNAL', `intel-fec has no device entry for ${pfId}`);
  return found;
}
