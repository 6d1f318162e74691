/**
 * What stages 3 and 4 share around the broker: its configuration for the guest (file store, the real
 * /sys, one PF on the generic plugin), the case that it came up with the PF up, and its view of the
 * PF holder.
 */
import { join } from 'node:path';
import { BrokerClient } from '../../src/dbus/client.js';
import type { PciAddress } from '../../src/pci/address.js';
import type { PfStatus } from '../../src/plugins/status.js';
import type { BrokerProcess, CliResult } from './broker-process.js';
import type { CaseReport } from './report.js';

const RECOVERY_ATTEMPTS = 3;

export function brokerConfig(dir: string, busAddress: string, pf: PciAddress): string {
  return `hostId: kernel-guest
store: { type: file, directory: ${join(dir, 'tokens')} }
sysfs: { root: /sys }
stateDirectory: ${join(dir, 'state')}
runtimeDirectory: ${join(dir, 'run')}
pfs:
  - { address: '${pf}', plugin: generic, vfs: 2 }
dbus: { busAddress: '${busAddress}' }
# debug: the PF holder's own log lines too, for the check that no token reaches a log.
log: { level: debug }
`;
}

/**
 * The case that the broker started with the PF up, saying how long its PF holder took to start
 * (seconds under TCG). When the PF is not up, the broker's error lines go into the case's detail and
 * its whole log into the serial log, and `vfbroker pf up` (what an operator would run; each attempt
 * a new holder start) gets the PF up, so the cases after this one still run.
 */
export async function checkReady(
  report: CaseReport,
  name: string,
  broker: BrokerProcess,
  pf: PciAddress,
  pfUp: () => Promise<CliResult>,
): Promise<void> {
  const ready = await broker.ready();
  const holder = broker.holderStartSeconds();
  const took = holder === null ? '' : `; PF holder answered ${holder.toFixed(1)} s after its start`;
  if (ready === `${pf}=up`) {
    report.record(name, true, `expected ${pf}=up, got ${ready}${took}`);
    return;
  }
  const errors = broker.errors();
  const said = errors.length === 0 ? '' : ` (broker: ${errors.join('; ')})`;
  report.record(name, false, `expected ${pf}=up, got ${ready}${said}${took}`);
  process.stdout.write(`${name}: the broker's log follows\n${broker.output}\n`);
  for (let attempt = 1; attempt <= RECOVERY_ATTEMPTS; attempt++) {
    const r = await pfUp();
    process.stdout.write(`${name}: vfbroker pf up ${pf} exited ${String(r.code)}: ${r.stdout}${r.stderr}\n`);
    if (r.code === 0) return;
  }
}

/** The broker's view of the PF in a few words (`up, PF open, token set`), and the PF holder's pid. */
export async function holderState(
  busAddress: string,
  pf: PciAddress,
): Promise<{ words: string; pid: number | null }> {
  const client = await BrokerClient.connect({ address: busAddress });
  try {
    const status = (await client.pfStatus(pf)) as PfStatus;
    const detail = status.driver?.detail ?? 'no driver';
    return {
      words: `${status.state}, ${detail.replace(/^PF holder pid \d+: /, '')}`,
      pid: status.driver?.pid ?? null,
    };
  } finally {
    client.close();
  }
}
