/**
 * The installed hook (the bundle, run as an executable) with its stdin a real pipe, as libvirt
 * gives it, and its broker calls going through the wire client to a real dbus-daemon and the
 * broker service (FixedBroker behind it). The host is a tiny /sys-like tree: VFs 02.1 and 02.2 of
 * a PF bound to vfio-pci.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, symlink, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hookArgs, requireHookBundle } from '../../reliability/hook-runner.js';
import { FORBIDDEN_VF, GUEST, PF, startWorld, TOKEN, VF, type World } from '../dbus/fixture.js';

const OTHER_TOKEN = 'a3b1c5d7-0e2f-4a6b-8c9d-1e3f5a7b9c0d';
const NAME = 'vdu-1';
/** Bounds a hook that would hang; never reached by a hook that keeps its deadline. */
const KILL_AFTER_MS = 20_000;

let world: World;
let dir: string;
let settings: string;
let shortDeadline: string;
let noBus: string;
let fifos = 0;

before(async () => {
  world = await startWorld();
  dir = await mkdtemp(join(tmpdir(), 'vfbroker-wire-hook-'));
  const devices = join(dir, 'sys/bus/pci/devices');
  for (const vf of [VF, FORBIDDEN_VF]) {
    await mkdir(join(devices, vf), { recursive: true });
    await symlink(`../${PF}`, join(devices, vf, 'physfn'));
  }
  await mkdir(join(devices, PF), { recursive: true });
  await symlink('../../../bus/pci/drivers/vfio-pci', join(devices, PF, 'driver'));
  const write = async (name: string, busAddress: string, deadlineMs: number) => {
    const file = join(dir, name);
    await writeFile(file, JSON.stringify({ busAddress, deadlineMs, sysfs: { root: join(dir, 'sys') } }));
    return file;
  };
  settings = await write('hook.json', world.bus.address, 5000);
  shortDeadline = await write('short.json', world.bus.address, 300);
  noBus = await write('nobus.json', `unix:path=${join(dir, 'no-bus')}`, 5000);
});

after(async () => {
  await world.stop();
  await rm(dir, { recursive: true, force: true });
  world.logs.assertNoSecrets([TOKEN, OTHER_TOKEN]);
});

/** A domain with one hostdev per VF, each carrying `tokens[i]` as its vf-token; `padding` bytes of description. */
function domainXml(tokens: readonly string[], padding = 0): string {
  const vfs = [VF, FORBIDDEN_VF];
  const hostdevs = tokens.map((_, i) => {
    const [domain, bus, slotFn] = (vfs[i] ?? VF).split(':') as [string, string, string];
    const [slot, fn] = slotFn.split('.') as [string, string];
    return `<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x${domain}' bus='0x${bus}' slot='0x${slot}' function='0x${fn}'/></source><alias name='ua-vf${i}'/></hostdev>`;
  });
  const overrides = tokens.map(
    (token, i) =>
      `<qemu:device alias='ua-vf${i}'><qemu:frontend><qemu:property name='vf-token' type='string' value='${token}'/></qemu:frontend></qemu:device>`,
  );
  return [
    `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>`,
    `<name>${NAME}</name><uuid>${GUEST}</uuid><description>${'x'.repeat(padding)}</description>`,
    `<devices>${hostdevs.join('')}</devices>`,
    `<qemu:override>${overrides.join('')}</qemu:override>`,
    `</domain>\n`,
  ].join('\n');
}

interface Run {
  readonly exitCode: number | null;
  readonly stderr: string;
  readonly killed: boolean;
}

/**
 * Runs the bundle with a pipe (a FIFO, as good as libvirt's anonymous pipe) for stdin. `feed`
 * writes to it; the pipe is closed once `feed` is done, unless `keepOpen`, in which case only when
 * the hook has exited.
 */
async function runHook(
  settingsFile: string,
  args: readonly string[],
  feed: (stdin: FileHandle) => Promise<void>,
  keepOpen = false,
): Promise<Run> {
  const fifo = join(dir, `stdin-${fifos++}`);
  execFileSync('mkfifo', ['-m', '600', fifo]);
  // O_RDWR first, so neither end's open waits for the other.
  const both = openSync(fifo, constants.O_RDWR);
  const readEnd = openSync(fifo, constants.O_RDONLY);
  const writer = await open(fifo, 'w');
  closeSync(both);
  const env: Record<string, string> = {
    LC_ALL: 'C',
    PATH: process.env['PATH'] ?? '',
    VFBROKER_HOOK_SETTINGS: settingsFile,
  };
  const child = spawn(requireHookBundle(), [...args], { env, stdio: [readEnd, 'ignore', 'pipe'] });
  closeSync(readEnd);
  let stderr = '';
  let killed = false;
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => {
    killed = true;
    child.kill('SIGKILL');
  }, KILL_AFTER_MS);
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  // A hook that exits early makes the writes fail with EPIPE: its exit status tells the story.
  await feed(writer).catch(() => undefined);
  if (!keepOpen) await writer.close();
  const exitCode = await exited;
  clearTimeout(timer);
  if (keepOpen) await writer.close();
  return { exitCode, stderr: stderr.trimEnd(), killed };
}

const write = (text: string) => async (stdin: FileHandle) => {
  await stdin.writeFile(text);
};

describe('the hook bundle over a pipe and the wire client', () => {
  it('prepare: the right vf-tokens pass, silently', async () => {
    const run = await runHook(settings, hookArgs(NAME, 'prepare'), write(domainXml([TOKEN])));
    assert.deepEqual(run, { exitCode: 0, stderr: '', killed: false });
  });

  it('prepare: a stale vf-token refuses the start with the broker’s line for that VF', async () => {
    const run = await runHook(settings, hookArgs(NAME, 'prepare'), write(domainXml([TOKEN, OTHER_TOKEN])));
    assert.deepEqual(run, {
      exitCode: 1,
      stderr: `vfbroker: ${NAME} (${GUEST}) ${FORBIDDEN_VF}: token-stale`,
      killed: false,
    });
  });

  it('started and release reach the broker and exit 0', async () => {
    for (const op of ['started', 'release'] as const) {
      const run = await runHook(settings, hookArgs(NAME, op), write(domainXml([TOKEN])));
      assert.deepEqual(run, { exitCode: 0, stderr: '', killed: false }, op);
    }
  });

  it('an XML larger than the pipe holds, written while the hook reads, is read whole', async () => {
    const xml = domainXml([OTHER_TOKEN], 512 * 1024);
    const run = await runHook(settings, hookArgs(NAME, 'prepare'), async (stdin) => {
      for (let at = 0; at < xml.length; at += 16 * 1024) {
        await stdin.write(xml.slice(at, at + 16 * 1024));
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    });
    // Refused for the token at the end of the input: the hook read all of it.
    assert.deepEqual([run.exitCode, run.stderr], [1, `vfbroker: ${NAME} (${GUEST}) ${VF}: token-stale`]);
  });

  it('a writer that never closes stdin: prepare is refused at the deadline, started passes; both exit', async () => {
    const partial = (stdin: FileHandle) => stdin.writeFile(domainXml([TOKEN]).slice(0, 100));
    const prepare = await runHook(shortDeadline, hookArgs(NAME, 'prepare'), partial, true);
    assert.deepEqual(prepare, {
      exitCode: 75,
      stderr: `vfbroker: the domain XML on stdin was not closed before the hook's deadline; no VF checked; prepare of guest "${NAME}" refused`,
      killed: false,
    });
    const started = await runHook(shortDeadline, hookArgs(NAME, 'started'), partial, true);
    assert.deepEqual([started.exitCode, started.killed], [0, false]);
  });

  it('no bus at the configured address: prepare refused with the connection error (exit 69)', async () => {
    const run = await runHook(noBus, hookArgs(NAME, 'prepare'), write(domainXml([TOKEN])));
    assert.equal(run.exitCode, 69);
    assert.equal(
      run.stderr,
      `vfbroker: broker not reachable (cannot connect to the D-Bus bus at unix:path=${join(dir, 'no-bus')}: ENOENT); VF ${VF} not checked; start refused — systemctl status vfbroker`,
    );
  });
});
