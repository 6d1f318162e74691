/**
 * SetNumVfs (issue 11 §3): the owner of a PF that the policy names — or root — changes its VF
 * count through the PF's plugin, with the same checks as `pf up`; anyone else is refused, and so
 * is a change that would take VFs from a running guest or from an application holding one open.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Caller } from '../../../src/broker/api.js';
import { VfbError } from '../../../src/errors.js';
import { BrokerWorld, pfAddress, vfAddress } from '../../support/broker-world.js';
import { captureLogs } from '../../support/log-capture.js';

const OWNER_UID = 4242;
const GUEST = {
  uuid: '5d0c1e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f',
  name: 'vdu-1',
  grants: [{ pf: 0, first: 0, last: 3 }],
};
const caller = (uid: number): Caller => ({
  uid,
  pid: 1000 + uid,
  gids: [],
  unit: null,
  busName: `:1.${uid}`,
});

function refused(code: string, message: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof VfbError, String(err));
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  };
}

describe('SetNumVfs', () => {
  let world: BrokerWorld;
  before(async () => {
    world = await BrokerWorld.start({
      pfCount: 2,
      vfs: 4,
      guests: [GUEST],
      owners: [{ uid: OWNER_UID, pf: 0 }],
      logger: captureLogs().logger,
    });
  });
  after(() => world.dispose());

  it('lets the owner the policy names change the VF count, through the plugin', async () => {
    await world.broker.setNumVfs(caller(OWNER_UID), pfAddress(0), 2);
    const [pf] = await world.broker.listPfs(caller(OWNER_UID));
    assert.equal(pf?.numVfs, 2);
    assert.equal(pf?.state, 'up');
    assert.deepEqual(await world.sim.virtfns(pfAddress(0)), [vfAddress(0, 0), vfAddress(0, 1)]);
  });

  it('refuses a caller the policy does not name, for this PF or any other', async () => {
    await assert.rejects(
      world.broker.setNumVfs(caller(1001), pfAddress(0), 4),
      refused('DENIED', /^uid 1001 may not set the VF count of 0000:10:00\.0: no owner rule/),
    );
    await assert.rejects(
      world.broker.setNumVfs(caller(OWNER_UID), pfAddress(1), 1),
      refused('DENIED', /may not set the VF count of 0000:11:00\.0/),
    );
    assert.equal((await world.sim.virtfns(pfAddress(1))).length, 4, 'nothing changed');
  });

  it('refuses to change the count while a guest holds one of the PF’s VFs', async () => {
    const root = caller(0);
    await world.broker.setNumVfs(root, pfAddress(0), 4);
    const token = await world.broker.getToken(root, vfAddress(0, 1));
    const [v] = await world.broker.prepareGuest(root, GUEST.uuid, GUEST.name, [
      { address: vfAddress(0, 1), presentedToken: token },
    ]);
    assert.equal(v?.verdict, 'ok');
    await assert.rejects(
      world.broker.setNumVfs(caller(OWNER_UID), pfAddress(0), 2),
      refused('BUSY', /has VFs in use by vdu-1/),
    );
    await world.broker.releaseGuest(root, GUEST.uuid, 'shutdown');
    await world.broker.setNumVfs(caller(OWNER_UID), pfAddress(0), 2);
  });

  it('refuses to change the count, or take the PF down, while an application holds a VF open', async () => {
    // A DPDK application with a token from GetToken holds no lease: only the kernel knows it.
    const root = caller(0);
    const pf = pfAddress(0);
    await world.broker.setNumVfs(root, pf, 4);
    const vf = vfAddress(0, 2);
    const handle = await world.sim.vfio.openDevice(`${vf} vf_token=${await world.broker.getToken(root, vf)}`);
    const node = `/dev/vfio/${String(await world.sim.iommuGroup(vf))}`;
    const busy = (action: string) => (err: unknown) => {
      assert.ok(err instanceof VfbError, String(err));
      assert.equal(err.code, 'BUSY');
      assert.equal(
        err.message,
        `PF ${pf} cannot ${action}: VF 2 ${vf} is open (VFIO group ${node} is held by a process, ` +
          'a DPDK application or QEMU); close it first: the kernel would wait for it',
      );
      assert.equal(err.hint, `fuser -v ${node}`);
      return true;
    };
    await assert.rejects(
      world.broker.setNumVfs(caller(OWNER_UID), pf, 2),
      busy('remove its 4 VFs (the count changes from 4 to 2 and the kernel needs 0 in between)'),
    );
    await assert.rejects(world.broker.pfDown(root, pf, false), busy('remove its 4 VFs'));
    const [listed] = await world.broker.listPfs(root);
    assert.deepEqual([listed?.state, listed?.numVfs], ['up', 4], 'the broker still serves the PF');
    assert.deepEqual(
      await world.sim.virtfns(pf),
      [0, 1, 2, 3].map((n) => vfAddress(0, n)),
    );

    await world.sim.vfio.closeDevice(handle);
    await world.broker.setNumVfs(caller(OWNER_UID), pf, 2);
    assert.equal((await world.broker.listPfs(root))[0]?.numVfs, 2);
  });

  it('applies the plugin’s limits', async () => {
    await assert.rejects(
      world.broker.setNumVfs(caller(0), pfAddress(0), 100),
      (err: unknown) => err instanceof VfbError,
    );
    assert.equal(
      (await world.broker.listPfs(caller(0)))[0]?.state,
      'up',
      'a refused count leaves the PF as it was',
    );
  });
});
