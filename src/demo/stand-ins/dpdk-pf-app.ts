/**
 * The demo's STAND-IN for a DPDK PF application (net_e1000_igb driving an 82576 PF), the PF driver
 * the igb plugin starts. Like the real one, it opens the PF given with `-a` through VFIO with the
 * token it was given (`--vfio-vf-token=<uuid>` among the EAL options, before `--`), which sets the
 * PF's VF token, and holds the PF until it is stopped. Unlike it, the VFIO it opens is the demo's
 * simulated host.
 */
import { openSimulatedSysfs, type SimulatedSysfsOptions } from '../../sysfs/persistent.js';
import { errnoOf, untilStopped, valueAfter } from './common.js';

/** What the demo's broker.yaml tells the igb plugin to wait for. */
export const READY_PATTERN = '^Port 0: link up';

export async function main(host: SimulatedSysfsOptions): Promise<void> {
  const args = process.argv.slice(2);
  const end = args.indexOf('--');
  const eal = end < 0 ? args : args.slice(0, end);
  const pf = valueAfter(eal, '-a');
  const token = eal.find((a) => a.startsWith('--vfio-vf-token='))?.slice('--vfio-vf-token='.length);
  if (pf === undefined) {
    process.stderr.write('EAL: no PCI device given (-a <address>)\n');
    process.exitCode = 1;
    return;
  }
  const sim = await openSimulatedSysfs(host);
  let handle: number;
  try {
    handle = await sim.vfio.openDevice(token === undefined ? pf : `${pf} vf_token=${token}`);
  } catch (err) {
    process.stderr.write(`EAL: cannot open ${pf} through VFIO: ${errnoOf(err)}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(
    `EAL: Probe PCI driver: net_e1000_igb device: ${pf} (vfbroker demo stand-in, simulated VFIO)\n`,
  );
  process.stdout.write('Port 0: link up\n');
  await untilStopped(process.stdin);
  await sim.vfio.closeDevice(handle);
}
