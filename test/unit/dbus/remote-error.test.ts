import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorFromReply } from '../../../src/dbus/remote-error.js';
import { ERROR_KINDS, VfbError, type ErrorCode } from '../../../src/errors.js';

describe('D-Bus error replies → VfbError', () => {
  it('a broker error comes back with its exact code, message and hint, for every code', () => {
    for (const code of Object.keys(ERROR_KINDS) as ErrorCode[]) {
      const sent = new VfbError(code, `something about ${code}`, { hint: `do this for ${code}` });
      const got = errorFromReply(sent.dbusName, [sent.message, code, sent.hint], 'Status');
      assert.equal(got.code, code);
      assert.equal(got.message, sent.message);
      assert.equal(got.hint, sent.hint);
      assert.equal(got.exitCode, sent.exitCode);
    }
  });

  it('a reply naming only the family gets the family code', () => {
    const got = errorFromReply('org.vfbroker.Error.Busy', ['busy'], 'Rotate');
    assert.equal(got.code, 'BUSY');
    assert.equal(got.message, 'busy');
    assert.equal(got.hint, ERROR_KINDS.BUSY.hint);
  });

  it('a code that does not belong to the named family is not trusted', () => {
    const got = errorFromReply('org.vfbroker.Error.Denied', ['no', 'INTERNAL', 'x'], 'GetToken');
    assert.equal(got.code, 'DENIED');
    const unknown = errorFromReply('org.vfbroker.Error.Frobbed', ['?'], 'GetToken');
    assert.equal(unknown.code, 'INTERNAL');
  });

  it('bus refusals map to a code of the right family and say what to do', () => {
    const cases: [string, ErrorCode, string][] = [
      [
        'ServiceUnknown',
        'UNAVAILABLE',
        'the vfbroker broker is not running (org.vfbroker.Broker1 has no owner)',
      ],
      [
        'NameHasNoOwner',
        'UNAVAILABLE',
        'the vfbroker broker is not running (org.vfbroker.Broker1 has no owner)',
      ],
      ['NoReply', 'UNAVAILABLE', 'the broker did not answer Rotate (NoReply)'],
      ['AccessDenied', 'DENIED', 'the D-Bus policy does not let this user call Rotate'],
      ['LimitsExceeded', 'BUSY', 'the bus refused Rotate: too many calls in flight (LimitsExceeded)'],
      ['UnknownMethod', 'UNAVAILABLE', 'the running broker does not offer Rotate'],
      ['InvalidArgs', 'INVALID_ARGUMENT', 'the broker refused the arguments of Rotate'],
      ['Spawn.ChildExited', 'UNAVAILABLE', 'the bus could not start the broker (Spawn.ChildExited)'],
      [
        'Frobnicated',
        'INTERNAL',
        'Rotate failed with the unexpected D-Bus error org.freedesktop.DBus.Error.Frobnicated',
      ],
    ];
    for (const [name, code, message] of cases) {
      const got = errorFromReply(`org.freedesktop.DBus.Error.${name}`, ['long text from the bus'], 'Rotate');
      assert.deepEqual([got.code, got.message], [code, message], name);
    }
  });

  it('a broker error without a message, or with a body of other types, still says who answered', () => {
    for (const body of [[], [''], [42, 'DENIED']]) {
      const got = errorFromReply('org.vfbroker.Error.Denied', body, 'GetToken');
      assert.deepEqual([got.code, got.message], ['DENIED', 'the broker answered org.vfbroker.Error.Denied']);
    }
    const other = errorFromReply('com.example.Error.Odd', ['x'], 'Status');
    assert.deepEqual(
      [other.code, other.message],
      ['INTERNAL', 'Status failed with the unexpected D-Bus error com.example.Error.Odd'],
    );
  });
});
