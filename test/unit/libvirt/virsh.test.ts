import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Virsh } from '../../../src/libvirt/virsh.js';
import { FakeRunner } from '../../support/fake-runner.js';

describe('Virsh', () => {
  it('lists the UUIDs of running guests from `virsh list --uuid`, in lower case', async () => {
    const runner = new FakeRunner().onRun('virsh', (argv) => {
      assert.deepEqual(argv.slice(1), ['-c', 'qemu:///system', 'list', '--uuid']);
      return { stdout: '3F2C8A91-6B4E-4D7A-9F10-2A6B8C4D0E11\n7a41d2c8-0e9f-4b53-8c26-d1e5f7a93b22\n\n' };
    });
    assert.deepEqual(
      [...(await new Virsh(runner).runningUuids())],
      ['3f2c8a91-6b4e-4d7a-9f10-2a6b8c4d0e11', '7a41d2c8-0e9f-4b53-8c26-d1e5f7a93b22'],
    );
  });

  it('says which package to install when virsh is missing', async () => {
    await assert.rejects(new Virsh(new FakeRunner()).runningUuids(), (err: unknown) => {
      assert.ok(err instanceof Error && 'code' in err && err.code === 'NOT_FOUND');
      return true;
    });
  });
});
