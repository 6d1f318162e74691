import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KernelError, type KernelErrno } from '../../../src/errors.js';
import { errnoOfRefusal, fromFsError, kernelRefusal } from '../../../src/sysfs/errno.js';

const PATH = '/sys/bus/pci/devices/0000:3b:00.0/sriov_numvfs';
const WHAT = 'cannot set sriov_numvfs of 0000:3b:00.0 to 4';

describe('kernel refusals', () => {
  it('maps each errno the kernel answers sysfs writes with to a KernelError', () => {
    const errnos: KernelErrno[] = [
      'EBUSY',
      'ERANGE',
      'ENOENT',
      'EINVAL',
      'EACCES',
      'ENODEV',
      'EPERM',
      'ENOSPC',
    ];
    for (const errno of errnos) {
      const fsError = Object.assign(new Error(`${errno}: open '${PATH}'`), { code: errno });
      const err = fromFsError(fsError, PATH, WHAT);
      assert.ok(err instanceof KernelError, errno);
      assert.equal(err.errno, errno);
      assert.equal(err.path, PATH);
      assert.equal(err.code, 'KERNEL_REFUSED');
      assert.equal(err.message, `${WHAT} (${errno} on ${PATH})`);
      assert.equal(err.cause, fsError);
      assert.equal(errnoOfRefusal(err), errno);
    }
  });

  it('keeps any other errno in the details of a KERNEL_REFUSED error', () => {
    const err = kernelRefusal('EXDEV', PATH, WHAT);
    assert.equal(err instanceof KernelError, false);
    assert.equal(err.code, 'KERNEL_REFUSED');
    assert.deepEqual(err.details, { errno: 'EXDEV', path: PATH });
    assert.equal(errnoOfRefusal(err), 'EXDEV');
  });

  it('treats anything that is not an fs error as an internal error', () => {
    const err = fromFsError(new TypeError('boom'), PATH, WHAT);
    assert.equal(err.code, 'INTERNAL');
    assert.equal(errnoOfRefusal(err), undefined);
    assert.equal(errnoOfRefusal(new Error('EBUSY')), undefined);
  });
});
