import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isVfbError } from '../../../src/errors.js';
import { Virsh } from '../../../src/libvirt/virsh.js';
import { FakeRunner } from '../../support/fake-runner.js';
import { assertNoSecretsIn } from '../../support/log-capture.js';
import { domainFixture } from './domain-fixtures.js';

const TOKEN = '0f1e2d3c-4b5a-4968-8776-655443322110';

describe('Virsh', () => {
  it('dumps the inactive definition of a domain given as --domain, even one named like an option', async () => {
    const xml = domainFixture('single-hostdev');
    const runner = new FakeRunner().onRun('virsh', (argv) =>
      argv.join(' ') === 'virsh -c qemu:///system dumpxml --domain --help --inactive'
        ? { stdout: xml }
        : { code: 1, stderr: 'error: bad command line' },
    );
    assert.equal(await new Virsh(runner).dumpXmlInactive('--help'), xml);
  });

  it('reports an unknown domain as NOT_FOUND', async () => {
    const runner = new FakeRunner().onRun('virsh', {
      code: 1,
      stderr:
        "error: failed to get domain 'nope'\nerror: Domain not found: no domain with matching name 'nope'\n",
    });
    await assert.rejects(new Virsh(runner).domUuid('nope'), (err: unknown) => {
      return isVfbError(err, 'NOT_FOUND') && err.message === 'libvirt has no guest named "nope"';
    });
  });

  it('defines from stdin, so the token never lands in a file, and keeps it out of errors', async () => {
    let received: string | undefined;
    const runner = new FakeRunner().onRun('virsh', (argv, input) => {
      assert.deepEqual(argv, ['virsh', '-c', 'qemu+ssh://host/system', 'define', '--file', '/dev/stdin']);
      received = input;
      return { code: 1, stderr: `error: XML error: invalid value '${TOKEN}' somewhere\n` };
    });
    const virsh = new Virsh(runner, { uri: 'qemu+ssh://host/system' });
    const xml = `<domain>${TOKEN}</domain>`;
    await assert.rejects(virsh.define(xml, [TOKEN]), (err: unknown) => {
      assert.ok(isVfbError(err, 'UNAVAILABLE'));
      assert.match(
        err.message,
        /define --file \/dev\/stdin` exited with status 1: error: XML error: invalid value '<redacted>' somewhere$/,
      );
      assertNoSecretsIn(err.message, [TOKEN], 'the error');
      return true;
    });
    assert.equal(received, xml);
  });

  it('reads UUIDs and the list of all guests', async () => {
    const runner = new FakeRunner().onRun('virsh', (argv) =>
      argv[3] === 'domuuid'
        ? { stdout: '0D2B8C7E-5A44-4F8E-BB2C-6F7E3B1D9A01\n\n' }
        : { stdout: 'web01\nfec-du1\n\n' },
    );
    const virsh = new Virsh(runner);
    assert.equal(await virsh.domUuid('fec-du1'), '0d2b8c7e-5a44-4f8e-bb2c-6f7e3b1d9a01');
    assert.deepEqual(await virsh.listAll(), ['web01', 'fec-du1']);
  });

  it('refuses domuuid output that is not a UUID', async () => {
    const runner = new FakeRunner().onRun('virsh', { stdout: 'garbage\n' });
    await assert.rejects(new Virsh(runner).domUuid('g'), /virsh domuuid printed no UUID for guest "g"/);
  });

  it('fails with the command and its first error line when virsh fails otherwise', async () => {
    const runner = new FakeRunner().onRun('virsh', {
      code: 1,
      stderr: 'error: failed to connect to the hypervisor\n',
    });
    await assert.rejects(
      new Virsh(runner).listAll(),
      (err: unknown) =>
        isVfbError(err, 'UNAVAILABLE') &&
        err.message ===
          '`virsh -c qemu:///system list --all --name` exited with status 1: error: failed to connect to the hypervisor',
    );
  });
});
