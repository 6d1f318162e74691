/**
 * One life-cycle change of a PF at a time. While SetNumVfs has removed a PF's VFs (sriov_numvfs
 * just written 0), a second change of that PF is refused BUSY instead of interleaving its sysfs
 * writes, and a guest asking for one of its VFs is refused pf-not-ready and leases nothing — the
 * VF is about to be destroyed. Another PF is not held up, and once the change is over both work.
 * A rotation of the PF and a change of it exclude each other the same way.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Caller, DeviceVerdict } from '../../../src/broker/api.js';
import { VfbError } from '../../../src/errors.js';
import { BrokerWorld, pfAddress, vfAddress } from '../../support/broker-world.js';
import { captureLogs } from '../../support/log-capture.js';
import { VfRemovalPause } from '../../unit/plugins/support/world.js';

const ROOT: Caller = { uid: 0, pid: 1, gids: [], unit: null, busName: ':1.0' };
const PF = pfAddress(0);
const OTHER_PF = pfAddress(1);
const GUEST = { uuid: '6d1f4c2a-3b5e-4a7c-9d8e-1f2a3b4c5d6e', name: 'vm-a' };

async function refusal(promise: Promise<unknown>): Promise<VfbError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof VfbError, `a VfbError, not ${String(err)}`);
    return err;
  }
  assert.fail('expected a refusal');
}

describe('a PF changed by two callers at once', () => {
  const logs = captureLogs('info');
  let world: BrokerWorld;
  /** Runs a hook once, right after the PF's next `sriov_numvfs` 0 is written: mid-change. */
  const midChange = new VfRemovalPause(PF);
  before(async () => {
    world = await BrokerWorld.start({
      pfCount: 2,
      vfs: 4,
      guests: [{ ...GUEST, grants: [{ pf: 0, first: 0, last: 3 }] }],
      logger: logs.logger,
      sysfs: (sim) => midChange.wrap(sim),
    });
  });
  after(() => world.dispose());

  const prepare = async (): Promise<DeviceVerdict[]> => {
    const token = await world.broker.getToken(ROOT, PF);
    return world.broker.prepareGuest(ROOT, GUEST.uuid, GUEST.name, [
      { address: vfAddress(0, 1), presentedToken: token },
    ]);
  };

  it('refuses a second change and the PF’s VFs while SetNumVfs runs; other PFs carry on', async () => {
    let seen: Record<string, unknown> | null = null;
    midChange.arm(async () => {
      const [again, down, up] = await Promise.all([
        refusal(world.broker.setNumVfs(ROOT, PF, 3)),
        refusal(world.broker.pfDown(ROOT, PF, false)),
        refusal(world.broker.pfUp(ROOT, PF, false)),
      ]);
      const [verdict] = await prepare();
      await world.broker.setNumVfs(ROOT, OTHER_PF, 2);
      seen = {
        codes: [again.code, down.code, up.code],
        message: again.message,
        verdict: verdict?.verdict,
        verdictMessage: verdict?.message,
        leases: world.leases.ofPf(PF).length,
        otherVfs: world.pfs.get(OTHER_PF)?.vfs.length,
      };
    });
    await world.broker.setNumVfs(ROOT, PF, 2);
    assert.deepEqual(seen, {
      codes: ['BUSY', 'BUSY', 'BUSY'],
      message: `PF ${PF} is already being changed (a new VF count, pf up, pf down or a repair); retry when that is done`,
      verdict: 'pf-not-ready',
      verdictMessage: `VF ${vfAddress(0, 1)} (PF ${PF} VF 1): its PF is not ready (a change of its VFs is under way: a new VF count, pf up, pf down or a repair); see: vfbroker pf status ${PF}`,
      leases: 0,
      otherVfs: 2,
    });
    assert.equal(world.pfs.get(PF)?.vfs.length, 2);
    assert.equal(await world.sim.readAttribute(PF, 'sriov_numvfs'), '2');
  });

  it('serves both once the change is over', async () => {
    const [verdict] = await prepare();
    assert.equal(verdict?.verdict, 'ok');
    await world.broker.releaseGuest(ROOT, GUEST.uuid, 'shutdown');
    await world.broker.setNumVfs(ROOT, PF, 4);
    assert.equal(world.pfs.get(PF)?.vfs.length, 4);
  });

  it('lets a rotation and a change of one PF exclude each other', async () => {
    // The rotation first: a change asked in the same turn, before the rotation has written its
    // journal or held the PF, is refused all the same.
    const rotation = world.broker.rotate(ROOT, PF);
    const change = await refusal(world.broker.setNumVfs(ROOT, PF, 3));
    assert.equal(await rotation, 'done');
    // The change first: a rotation asked mid-change is refused.
    let rotate: VfbError | null = null;
    midChange.arm(async () => {
      rotate = await refusal(world.broker.rotate(ROOT, PF));
    });
    await world.broker.setNumVfs(ROOT, PF, 3);
    assert.deepEqual(
      [change.code, change.message, (rotate as VfbError | null)?.code, (rotate as VfbError | null)?.message],
      [
        'BUSY',
        `PF ${PF} is rotating its token; its VF count cannot change meanwhile`,
        'BUSY',
        `PF ${PF} is being changed (a new VF count, pf up, pf down or a repair); rotate it when that is done`,
      ],
    );
    assert.equal(world.pfs.get(PF)?.vfs.length, 3);
  });
});
