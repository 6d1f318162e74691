/** Commands that several fixes name, spelt one way. */
export const JOURNAL = 'journalctl -u vfbroker';
export const RESTART = 'systemctl restart vfbroker';

/** Brings a PF up again through the broker: bind, VFs, PF driver with its token. */
export function pfUp(pf: string): string {
  return `vfbroker pf up ${pf}`;
}

/** Shows which bring-up step of a PF is not done. */
export function pfStatus(pf: string): string {
  return `vfbroker pf status ${pf}`;
}

/** Moves a device to vfio-pci: unbind (when bound), override, probe (REFERENCE.md §2). */
export function bindToVfioPci(address: string, bound: boolean): string {
  const dev = `/sys/bus/pci/devices/${address}`;
  return [
    ...(bound ? [`echo ${address} > ${dev}/driver/unbind`] : []),
    `echo vfio-pci > ${dev}/driver_override`,
    `echo ${address} > /sys/bus/pci/drivers_probe`,
  ].join(' && ');
}
