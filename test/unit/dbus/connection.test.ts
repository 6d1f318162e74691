import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unixSocketPath } from '../../../src/dbus/connection.js';
import { VfbError } from '../../../src/errors.js';

describe('D-Bus addresses', () => {
  it('takes the path of the first unix:path= entry, unescaped', () => {
    assert.equal(unixSocketPath('unix:path=/run/dbus/system_bus_socket'), '/run/dbus/system_bus_socket');
    assert.equal(unixSocketPath('unix:path=/tmp/a%20b,guid=0123abcd'), '/tmp/a b');
    assert.equal(unixSocketPath('tcp:host=localhost,port=1;unix:path=/x/bus'), '/x/bus');
  });

  it('refuses transports that are not a unix socket path, and paths dbus-next cannot carry', () => {
    for (const bad of [
      'unixexec:path=/bin/sh,argv1=-c',
      'tcp:host=localhost,port=12345',
      'unix:abstract=/tmp/dbus-x',
      'unix:path=relative/bus',
      'unix:path=/tmp/a%2Cb',
      'unix:path=/tmp/%zz',
      '',
      'nonsense',
    ]) {
      assert.throws(
        () => unixSocketPath(bad),
        (err) =>
          err instanceof VfbError &&
          err.code === 'UNAVAILABLE' &&
          err.message.startsWith('unsupported D-Bus address'),
        bad,
      );
    }
  });
});
