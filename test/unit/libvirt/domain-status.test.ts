import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { isVfbError } from '../../../src/errors.js';
import { readDomainStatusXml } from '../../../src/libvirt/domain-status.js';
import { FIXTURE_GUEST, STATUS_FIXTURE, statusXml } from '../../support/libvirt-run.js';

const WHAT = 'the status file';
const TOKEN = '4c1d7e2a-9b3f-4a6e-8d5c-0f1e2d3c4b5a';

function refusal(text: string): string {
  try {
    readDomainStatusXml(text, WHAT);
  } catch (err) {
    assert.ok(isVfbError(err, 'INVALID_ARGUMENT'), String(err));
    assert.ok(!err.message.includes('\n'));
    return err.message;
  }
  assert.fail('expected INVALID_ARGUMENT');
}

describe('libvirt status file', () => {
  it('gives the state, the QEMU pid and the domain of a file libvirt wrote', () => {
    assert.deepEqual(readDomainStatusXml(readFileSync(STATUS_FIXTURE, 'utf8'), WHAT), {
      state: 'running',
      pid: FIXTURE_GUEST.pid,
      uuid: FIXTURE_GUEST.uuid,
      name: FIXTURE_GUEST.name,
    });
  });

  it('reads any state and lower-cases the UUID', () => {
    const text = statusXml({
      name: 'vm-b',
      uuid: '0B5E3C1D-7A2F-4E8B-9C6D-5F4A3B2C1D0E',
      pid: 4_194_304,
      state: 'paused',
    });
    assert.deepEqual(readDomainStatusXml(text, WHAT), {
      state: 'paused',
      pid: 4_194_304,
      uuid: '0b5e3c1d-7a2f-4e8b-9c6d-5f4a3b2c1d0e',
      name: 'vm-b',
    });
  });

  it('refuses a file that is not a status file, naming what is wrong', () => {
    const good = readFileSync(STATUS_FIXTURE, 'utf8');
    const pid = (value: string) => good.replace(`pid='${FIXTURE_GUEST.pid}'`, value);
    assert.equal(
      refusal("<domain type='kvm'><name>a</name></domain>"),
      `${WHAT} has root element <domain> instead of <domstatus>`,
    );
    assert.equal(refusal(pid('')), `${WHAT} has no pid`);
    for (const bad of ["pid='-1'", "pid='0x10'", "pid='4194305'", "pid=' 12'", "pid='99999999999'"]) {
      assert.equal(refusal(pid(bad)), `${WHAT} has a malformed pid`, bad);
    }
    assert.equal(
      refusal(good.replace("state='running'", "state='Running now'")),
      `${WHAT} has no state, or a malformed one`,
    );
    assert.equal(refusal("<domstatus state='running' pid='7'/>"), `${WHAT} has no <domain>`);
    assert.equal(
      refusal(good.replace(FIXTURE_GUEST.uuid, 'not-a-uuid')),
      `${WHAT} has a malformed <uuid> "not-a-uuid"`,
    );
    assert.match(refusal(good.slice(0, 2000)), /^the status file is not well-formed XML/);
  });

  it('goes through the hardened parser: no DOCTYPE, no entities, bounded', () => {
    assert.match(
      refusal(`<!DOCTYPE domstatus [<!ENTITY e "x">]><domstatus state='running' pid='7'/>`),
      /has a DOCTYPE declaration/,
    );
    assert.match(
      refusal(statusXml({ ...FIXTURE_GUEST, name: '&e;' })),
      /^the status file is not well-formed XML/,
    );
    const big = readFileSync(STATUS_FIXTURE, 'utf8');
    assert.throws(
      () => readDomainStatusXml(big, WHAT, { maxChars: 1000, maxDepth: 64, maxElements: 1000 }),
      /the status file is larger than 1000 characters/,
    );
  });

  it('never quotes the definition inside it, which may hold vf-tokens', () => {
    const withToken = statusXml({ ...FIXTURE_GUEST, uuid: 'bad' }).replace(
      '</domain>',
      `<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:device alias='hostdev0'><qemu:frontend><qemu:property name='vf-token' type='string' value='${TOKEN}'/></qemu:frontend></qemu:device></qemu:override></domain>`,
    );
    assert.ok(!refusal(withToken).includes(TOKEN));
    assert.ok(!refusal(withToken.replace(`value='${TOKEN}'`, `value='${TOKEN}`)).includes(TOKEN));
  });
});
