import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { libvirtDefinitionSync } from '../../../src/libvirt/rotation-sync.js';
import { Virsh } from '../../../src/libvirt/virsh.js';
import { readDomainXml } from '../../../src/libvirt/domain-xml.js';
import { parsePciAddress } from '../../../src/pci/address.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { FakeVirsh } from '../../support/fake-virsh.js';
import { captureLogs } from '../../support/log-capture.js';
import { repoPath } from '../../support/repo.js';

const PF = parsePciAddress('0000:3b:00.0');
const VF = parsePciAddress('0000:3b:02.1'); // the VF in single-hostdev.xml
const NEW = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

async function world(opts: { authorised: boolean; virshInstalled?: boolean }) {
  const runner = new FakeRunner();
  const virsh = new FakeVirsh();
  if (opts.virshInstalled !== false) virsh.install(runner);
  const single = await readFile(repoPath('test/fixtures/domains/single-hostdev.xml'), 'utf8');
  virsh.definitions.set('fec-du1', single);
  virsh.definitions.set('plain', await readFile(repoPath('test/fixtures/domains/no-hostdevs.xml'), 'utf8'));
  const logs = captureLogs();
  const sync = libvirtDefinitionSync({
    virsh: new Virsh(runner),
    locate: (vf) => (vf === VF ? { pf: PF, index: 0 } : null),
    activeToken: () => Promise.resolve(NEW),
    authorised: () => opts.authorised,
    logger: logs.logger,
  });
  return { sync, virsh, single, logs };
}

const tokensIn = (xml: string) => [...readDomainXml(xml).vfTokens.values()];

describe('rotation: syncing guest definitions through virsh', () => {
  it('writes the new token into an authorised guest’s definition and leaves the others alone', async () => {
    const { sync, virsh, logs } = await world({ authorised: true });
    const plainBefore = virsh.definitions.get('plain');
    assert.deepEqual(await sync.syncGuests(PF, 5), { synced: ['fec-du1'], failed: [] });
    assert.deepEqual(tokensIn(virsh.definitions.get('fec-du1') ?? ''), [NEW]);
    assert.equal(virsh.definitions.get('plain'), plainBefore);
    assert.deepEqual(await sync.syncGuests(PF, 5), { synced: [], failed: [] }, 'nothing left to change');
    assert.equal(virsh.defines, 1);
    logs.assertNoSecrets([NEW]);
  });

  it('gives no token to a guest the policy does not authorise', async () => {
    const { sync, virsh, single } = await world({ authorised: false });
    assert.deepEqual(await sync.syncGuests(PF, 5), { synced: [], failed: [] });
    assert.equal(virsh.definitions.get('fec-du1'), single);
  });

  it('reports a guest whose definition cannot be read, and carries on', async () => {
    const { sync, virsh } = await world({ authorised: true });
    virsh.definitions.set('broken', '<domain><name>broken</name>');
    const report = await sync.syncGuests(PF, 5);
    assert.deepEqual(report.synced, ['fec-du1']);
    assert.equal(report.failed.length, 1);
    assert.equal(report.failed[0]?.guest, 'broken');
    assert.ok(!report.failed[0]?.message.includes('\n'));
  });

  it('has nothing to do on a host without libvirt', async () => {
    const { sync } = await world({ authorised: true, virshInstalled: false });
    assert.deepEqual(await sync.syncGuests(PF, 5), { synced: [], failed: [] });
  });
});
