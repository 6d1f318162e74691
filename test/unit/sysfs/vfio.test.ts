/**
 * The VF-token rules of REFERENCE.md §1, each seen on a real kernel, against the simulator.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { VfbError } from '../../../src/errors.js';
import { parsePciAddress, type PciAddress } from '../../../src/pci/address.js';
import { SysfsSimulator } from '../../../src/sysfs/simulator.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import { repoPath } from '../../support/repo.js';

const PF = parsePciAddress('0000:00:04.0');
const BRIDGE = parsePciAddress('0000:00:00.0');
const A = '6f1d3a52-8b4c-4e2a-9d7f-1c3b5a7e9f20';
const B = 'c2e4a6b8-1d3f-4a5c-8e7b-9f0a2c4e6b8d';

/** The guest's PF on vfio-pci (enable_sriov=Y) with two VFs, captured by vfio-pci. */
async function vfioPf(): Promise<{ sim: SysfsSimulator; vf0: PciAddress; vf1: PciAddress }> {
  const sim = await SysfsSimulator.fromFixture(repoPath('test/fixtures/hosts/qemu-igb-guest.yaml'));
  await sim.writeAttribute(PF, 'driver_override', 'vfio-pci');
  await sim.unbind(PF);
  await sim.probe(PF);
  await sim.writeAttribute(PF, 'sriov_numvfs', '2');
  const [vf0, vf1] = await sim.virtfns(PF);
  assert.ok(vf0 && vf1);
  return { sim, vf0, vf1 };
}

const withToken = (addr: PciAddress, token: string | null) =>
  token === null ? addr : `${addr} vf_token=${token}`;

/** "OK" when the open succeeds (the handle is closed again), else the errno. */
async function opens(sim: SysfsSimulator, addr: PciAddress, token: string | null): Promise<string> {
  const result = await attempt(sim.vfio.openDevice(withToken(addr, token)));
  if (typeof result === 'number') await sim.vfio.closeDevice(result);
  return typeof result === 'number' ? 'OK' : result;
}

async function attempt<T>(p: Promise<T>): Promise<T | string> {
  try {
    return await p;
  } catch (err) {
    assert.ok(err instanceof VfbError && err.code === 'KERNEL_REFUSED', String(err));
    return String(err.details['errno']);
  }
}

describe('VF tokens on the simulated kernel (REFERENCE.md §1)', () => {
  it('starts with a random token: no VF opens until the PF user sets one', async () => {
    const { sim, vf0 } = await vfioPf();
    assert.equal(await opens(sim, vf0, null), 'EACCES');
    assert.equal(await opens(sim, vf0, A), 'EACCES');
    assert.deepEqual(sim.kernelLog().slice(-2), [
      `vfio-pci ${vf0}: VF token required to access device`,
      `vfio-pci ${vf0}: Incorrect VF token provided for device`,
    ]);
  });

  it('PF opened without a token while no VF is open: opens, token unchanged', async () => {
    const { sim, vf0 } = await vfioPf();
    assert.equal(await opens(sim, PF, A), 'OK');
    assert.equal(await opens(sim, PF, null), 'OK');
    assert.equal(await opens(sim, vf0, A), 'OK');
  });

  it('PF opened with a token while no VF is open: opens and sets it; VFs need exactly that token', async () => {
    const { sim, vf0 } = await vfioPf();
    assert.equal(await opens(sim, PF, A), 'OK');
    assert.equal(await opens(sim, vf0, B), 'EACCES');
    assert.equal(await opens(sim, vf0, null), 'EACCES');
    assert.equal(await opens(sim, vf0, A.toUpperCase()), 'OK');
    assert.equal(await opens(sim, PF, B), 'OK');
    assert.equal(await opens(sim, vf0, A), 'EACCES');
  });

  it('PF opened while a VF is open: none and wrong → EACCES, the current token opens', async () => {
    const { sim, vf0 } = await vfioPf();
    assert.equal(await opens(sim, PF, A), 'OK');
    const vf = await sim.vfio.openDevice(withToken(vf0, A));
    assert.equal(await opens(sim, PF, null), 'EACCES');
    assert.equal(await opens(sim, PF, B), 'EACCES');
    assert.equal(await opens(sim, PF, A), 'OK');
    await sim.vfio.closeDevice(vf);
    assert.equal(await opens(sim, PF, B), 'OK');
  });

  it('the PF user replaces the token while a VF is open: the open VF stays, later opens need the new one', async () => {
    const { sim, vf0, vf1 } = await vfioPf();
    const pf = await sim.vfio.openDevice(withToken(PF, A));
    const held = await sim.vfio.openDevice(withToken(vf0, A));
    await sim.vfio.setVfToken(pf, B);
    assert.equal(await opens(sim, vf1, A), 'EACCES');
    assert.equal(await opens(sim, vf1, B), 'OK');
    await sim.vfio.closeDevice(held);
  });

  it('the token outlives the PF fd and ends with the PF binding', async () => {
    const { sim, vf0 } = await vfioPf();
    await sim.vfio.closeDevice(await sim.vfio.openDevice(withToken(PF, A)));
    assert.equal(await opens(sim, vf0, A), 'OK');
    await sim.unbind(PF);
    await sim.probe(PF);
    await sim.writeAttribute(PF, 'sriov_numvfs', '1');
    assert.equal(await opens(sim, vf0, A), 'EACCES');
  });

  it('never gives the token back: FEATURE GET → EINVAL; on a VF or a plain device → ENOTTY', async () => {
    const { sim, vf0 } = await vfioPf();
    const pf = await sim.vfio.openDevice(withToken(PF, A));
    assert.equal(await attempt(sim.vfio.getVfToken(pf)), 'EINVAL');
    const vf = await sim.vfio.openDevice(withToken(vf0, A));
    assert.equal(await attempt(sim.vfio.setVfToken(vf, B)), 'ENOTTY');
    assert.equal(await attempt(sim.vfio.getVfToken(vf)), 'ENOTTY');
  });

  it('a VF whose PF is not on vfio-pci: a token → EINVAL, none → opens', async () => {
    const sim = await SysfsSimulator.fromFixture(repoPath('test/fixtures/hosts/qemu-igb-guest.yaml'));
    await sim.writeAttribute(PF, 'sriov_numvfs', '1');
    const [vf] = await sim.virtfns(PF);
    assert.ok(vf);
    assert.equal(await sim.driver(vf), 'igbvf');
    assert.equal(await opens(sim, vf, null), 'ENODEV'); // not bound to vfio-pci: no VFIO device at all
    await sim.writeAttribute(vf, 'driver_override', 'vfio-pci');
    await sim.unbind(vf);
    await sim.probe(vf);
    assert.equal(await opens(sim, vf, A), 'EINVAL');
    assert.equal(await opens(sim, vf, null), 'OK');
    assert.equal(
      sim.kernelLog().at(-1),
      `vfio-pci ${vf}: VF token incorrectly provided, PF not bound to vfio-pci`,
    );
  });

  it('a device that is neither PF nor VF: a token → EINVAL, none → opens', async () => {
    const sim = await SysfsSimulator.fromFixture(repoPath('test/fixtures/hosts/qemu-igb-guest.yaml'));
    await sim.writeAttribute(BRIDGE, 'driver_override', 'vfio-pci');
    await sim.probe(BRIDGE);
    assert.equal(await opens(sim, BRIDGE, A), 'EINVAL');
    assert.equal(await opens(sim, BRIDGE, null), 'OK');
    const handle = await sim.vfio.openDevice(BRIDGE);
    assert.equal(await attempt(sim.vfio.setVfToken(handle, A)), 'ENOTTY');
  });

  it('a malformed token or an unknown option → EINVAL; another device name → ENODEV', async () => {
    const { sim, vf0 } = await vfioPf();
    for (const request of [
      `${PF} vf_token=${A.slice(1)}`,
      `${PF} vf_token=${A}x`,
      `${PF} vf_token=${A} vf_token=${A}`,
      `${PF} other=1`,
      `${vf0} vf_token=not-a-uuid`,
    ]) {
      assert.equal(await attempt(sim.vfio.openDevice(request)), 'EINVAL', request);
    }
    assert.equal(await attempt(sim.vfio.openDevice(`${PF}x`)), 'ENODEV');
    assert.equal(await attempt(sim.vfio.openDevice('0000:00:09.0')), 'ENODEV');
    assert.equal(await attempt(sim.vfio.closeDevice(999)), 'EBADF');
  });

  it('keeps tokens out of its state, its log and its errors', async () => {
    const { sim, vf0 } = await vfioPf();
    const pf = await sim.vfio.openDevice(withToken(PF, A));
    await sim.vfio.setVfToken(pf, B);
    const errors: string[] = [];
    for (const request of [withToken(vf0, A), `${vf0} vf_token=${A}x`, withToken(BRIDGE, B)]) {
      try {
        await sim.vfio.openDevice(request);
      } catch (err) {
        assert.ok(err instanceof VfbError);
        errors.push(`${err.message} ${JSON.stringify(err.details)}`);
      }
    }
    assert.equal(errors.length, 3);
    assertNoSecretsIn(
      [JSON.stringify(sim.snapshot()), ...sim.kernelLog(), ...errors].join('\n'),
      [A, B],
      'the simulator',
    );
    assert.equal(
      errors[0],
      `cannot open ${vf0} through VFIO (EACCES on /dev/vfio/1) {"errno":"EACCES","path":"/dev/vfio/1"}`,
    );
  });
});
