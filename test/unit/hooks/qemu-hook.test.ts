import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { before, describe, it } from 'node:test';
import { KernelError } from '../../../src/errors.js';
import type { HookBrokerClient } from '../../../src/hooks/broker-port.js';
import { runQemuHook, type QemuHookResult } from '../../../src/hooks/qemu-hook.js';
import type { HostPci } from '../../../src/hooks/token-devices.js';
import { readDomainXml } from '../../../src/libvirt/domain-xml.js';
import type { PciAddress } from '../../../src/pci/address.js';
import type { SysfsSimulator } from '../../../src/sysfs/simulator.js';
import { assertNoSecretsIn, captureLogs } from '../../support/log-capture.js';
import {
  CURRENT_TOKEN,
  DOMAIN_FIXTURES,
  STALE_TOKEN,
  domainFixture,
  type DomainFixture,
} from '../libvirt/domain-fixtures.js';
import { AF_TOKEN, BrokerDouble } from './broker-double.js';
import { simulatedHost } from './simulated-host.js';

const SECRETS = [CURRENT_TOKEN, STALE_TOKEN, AF_TOKEN];

let host: SysfsSimulator;
before(async () => {
  host = await simulatedHost();
});

interface Run extends QemuHookResult {
  readonly logs: Record<string, unknown>[];
}

interface RunOptions {
  readonly broker?: BrokerDouble;
  readonly connect?: () => Promise<HookBrokerClient>;
  readonly sysfs?: HostPci;
  readonly deadlineMs?: number;
}

async function hook(
  args: readonly string[],
  stdin: string | AsyncIterable<Uint8Array>,
  options: RunOptions = {},
): Promise<Run> {
  const captured = captureLogs();
  const broker = options.broker ?? new BrokerDouble();
  const result = await runQemuHook({
    argv: args,
    stdin: typeof stdin === 'string' ? Readable.from([Buffer.from(stdin)]) : stdin,
    sysfs: options.sysfs ?? host,
    connectBroker: options.connect ?? broker.connect,
    logger: captured.logger,
    ...(options.deadlineMs === undefined ? {} : { deadlineMs: options.deadlineMs }),
  });
  captured.assertNoSecrets(SECRETS);
  assertNoSecretsIn(result.stderrLines.join('\n'), SECRETS, 'stderr');
  for (const line of result.stderrLines) assert.ok(!line.includes('\n'), 'a stderr line holds a newline');
  return { ...result, logs: captured.records() };
}

const missing = (vf: string, guest: string) =>
  `vfbroker: VF ${vf} needs a VF token the definition lacks; run \`vfbroker guest sync ${guest}\``;
const stale = (vf: string, guest: string) =>
  `vfbroker: VF ${vf} presents a rotated token; run \`vfbroker guest sync ${guest}\``;
const unreachable = (vfs: readonly string[]) =>
  `vfbroker: broker not reachable (cannot connect to the system bus: connect ENOENT /run/dbus/system_bus_socket); ` +
  `${vfs.length === 1 ? 'VF' : 'VFs'} ${vfs.join(', ')} not checked; start refused — systemctl status vfbroker`;

/** The VFs of each fixture that need a token on the simulated host, in XML order (known addresses only). */
const TOKEN_VFS: Record<DomainFixture, readonly string[]> = {
  'no-hostdevs': [],
  'single-hostdev': ['0000:3b:02.1'],
  'stale-token': ['0000:3b:02.2'],
  'interface-hostdev': ['0000:af:02.3'],
  multifunction: ['0000:3b:02.1', '0000:3b:02.0', '0000:3b:02.7'],
  'decimal-attributes': ['0000:3b:02.1', '0000:3b:02.3'],
  'network-pool-prepare': [],
  'network-pool-start': ['0000:3b:02.3'],
  'network-pool-status': ['0000:3b:02.3'],
  'user-qemu-override': ['0000:3b:02.4'],
  'gpu-and-cx5': [],
};

/** Of those, the ones checked again at `start`: interfaces, which may come from a network pool. */
const START_VFS: Partial<Record<DomainFixture, readonly string[]>> = {
  'interface-hostdev': ['0000:af:02.3'],
  'network-pool-start': ['0000:3b:02.3'],
  'network-pool-status': ['0000:3b:02.3'],
};

/** What the broker double refuses at prepare, as the hook prints it. */
const PREPARE_REFUSALS: Record<DomainFixture, readonly string[]> = {
  'no-hostdevs': [],
  'single-hostdev': [],
  'stale-token': [stale('0000:3b:02.2', 'fec-du2')],
  'interface-hostdev': [missing('0000:af:02.3', 'router1')],
  multifunction: ['0000:3b:02.1', '0000:3b:02.0', '0000:3b:02.7'].map((vf) => missing(vf, 'dpdk-lab')),
  'decimal-attributes': [missing('0000:3b:02.1', 'handmade'), missing('0000:3b:02.3', 'handmade')],
  'network-pool-prepare': [],
  'network-pool-start': [],
  'network-pool-status': [],
  'user-qemu-override': [missing('0000:3b:02.4', 'tuned')],
  'gpu-and-cx5': [],
};

const START_REFUSALS: Partial<Record<DomainFixture, readonly string[]>> = {
  'interface-hostdev': [missing('0000:af:02.3', 'router1')],
};

function uuidOf(name: DomainFixture): string {
  return readDomainXml(domainFixture(name)).uuid;
}

function warnings(run: Run): unknown[] {
  return run.logs.filter((r) => r['level'] === 40).map((r) => r['msg']);
}

describe('qemu hook, every op on every fixture, broker up', () => {
  for (const name of DOMAIN_FIXTURES) {
    const xml = domainFixture(name);
    const refusals = (list: readonly string[]) => ({ exitCode: list.length > 0 ? 1 : 0, stderrLines: list });

    it(`${name}: prepare`, async () => {
      const broker = new BrokerDouble();
      const run = await hook([name, 'prepare', 'begin', '-'], xml, { broker });
      assert.deepEqual(
        { exitCode: run.exitCode, stderrLines: run.stderrLines },
        refusals(PREPARE_REFUSALS[name]),
      );
      // The broker keeps a lease exactly when every token-relevant VF was accepted.
      const leased = TOKEN_VFS[name].length > 0 && PREPARE_REFUSALS[name].length === 0;
      assert.deepEqual(broker.leases.get(uuidOf(name)), leased ? TOKEN_VFS[name] : undefined);
    });

    it(`${name}: start`, async () => {
      const run = await hook([name, 'start', 'begin', '-'], xml);
      assert.deepEqual(
        { exitCode: run.exitCode, stderrLines: run.stderrLines },
        refusals(START_REFUSALS[name] ?? []),
      );
    });

    it(`${name}: started, stopped, release`, async () => {
      const broker = new BrokerDouble();
      const involved = TOKEN_VFS[name].length > 0;
      const started = await hook([name, 'started', 'begin', '-'], xml, { broker });
      assert.deepEqual(
        [started.exitCode, started.stderrLines, broker.running.has(uuidOf(name))],
        [0, [], involved],
      );
      const stopped = await hook([name, 'stopped', 'end', '-'], xml, { broker });
      assert.deepEqual(
        [stopped.exitCode, stopped.stderrLines, broker.running.has(uuidOf(name))],
        [0, [], false],
      );
      assert.equal(broker.released.get(uuidOf(name)), involved ? 'stopped' : undefined);
      const released = await hook([name, 'release', 'end', 'from snapshot'], xml, { broker });
      assert.deepEqual([released.exitCode, released.stderrLines], [0, []]);
      assert.equal(broker.released.get(uuidOf(name)), involved ? 'from snapshot' : undefined);
    });

    it(`${name}: migrate, restore and ops the hook does not act on`, async () => {
      const broker = new BrokerDouble();
      for (const args of [
        ['migrate', 'begin', '-'],
        ['restore', 'begin', '-'],
        ['reconnect', 'begin', '-'],
        ['attach', 'begin', '-'],
        ['prepare', 'end', '-'],
        ['frobnicate', 'sideways', 'x y'],
      ]) {
        const run = await hook([name, ...args], xml, { broker });
        assert.deepEqual([args[0], run.exitCode, run.stderrLines], [args[0], 0, []]);
      }
      assert.deepEqual([broker.leases.size, broker.running.size, broker.released.size], [0, 0, 0]);
    });
  }
});

describe('qemu hook, broker unreachable', () => {
  for (const name of DOMAIN_FIXTURES) {
    const xml = domainFixture(name);
    it(`${name}: fails closed only where a VF token is involved`, async () => {
      const broker = new BrokerDouble();
      broker.mode = 'unreachable';
      const prepare = await hook([name, 'prepare', 'begin', '-'], xml, { broker });
      const atPrepare = TOKEN_VFS[name];
      assert.deepEqual(
        { exitCode: prepare.exitCode, stderrLines: prepare.stderrLines },
        atPrepare.length > 0
          ? { exitCode: 69, stderrLines: [unreachable(atPrepare)] }
          : { exitCode: 0, stderrLines: [] },
      );
      const start = await hook([name, 'start', 'begin', '-'], xml, { broker });
      const atStart = START_VFS[name] ?? [];
      assert.deepEqual(
        { exitCode: start.exitCode, stderrLines: start.stderrLines },
        atStart.length > 0
          ? { exitCode: 69, stderrLines: [unreachable(atStart)] }
          : { exitCode: 0, stderrLines: [] },
      );
      for (const op of [
        ['started', 'begin', '-'],
        ['stopped', 'end', '-'],
        ['release', 'end', 'destroyed'],
      ]) {
        const run = await hook([name, ...op], xml, { broker });
        assert.deepEqual([run.exitCode, run.stderrLines], [0, []]);
        const member = op[0] === 'started' ? 'GuestStarted failed' : 'ReleaseGuest failed';
        assert.deepEqual(warnings(run), atPrepare.length > 0 ? [member] : []);
      }
    });
  }
});

describe('qemu hook, broker answers', () => {
  it('names a denied VF with the fix the broker gives', async () => {
    const broker = new BrokerDouble();
    broker.denied.add('0000:3b:02.1');
    const run = await hook(['fec-du1', 'prepare', 'begin', '-'], domainFixture('single-hostdev'), { broker });
    assert.deepEqual(run, {
      ...run,
      exitCode: 1,
      stderrLines: [
        'vfbroker: VF 0000:3b:02.1 is not granted to guest fec-du1; add a grant to /etc/vfbroker/policy.yaml',
      ],
    });
  });

  it('refuses a VF the broker gave no verdict for, and keeps a token out of a broker message', async () => {
    const client: HookBrokerClient = {
      prepareGuest: (_uuid, _name, devices) =>
        Promise.resolve([
          // A broker that (wrongly) echoes the presented token back.
          {
            address: devices[0]?.address as PciAddress,
            verdict: 'token-stale',
            message: `stale:\n${devices[0]?.presentedToken ?? 'none'}`,
          },
        ]),
      guestStarted: () => Promise.resolve(),
      releaseGuest: () => Promise.resolve(),
      close: () => undefined,
    };
    const run = await hook(['handmade', 'prepare', 'begin', '-'], domainFixture('stale-token'), {
      connect: () => Promise.resolve(client),
    });
    assert.deepEqual(run.stderrLines, ['vfbroker: VF 0000:3b:02.2: stale: <redacted>']);
    const two = await hook(['handmade', 'prepare', 'begin', '-'], domainFixture('decimal-attributes'), {
      connect: () => Promise.resolve(client),
    });
    assert.deepEqual(
      [two.exitCode, two.stderrLines],
      [
        1,
        [
          'vfbroker: VF 0000:3b:02.1: stale: none',
          'vfbroker: the broker gave no verdict for VF 0000:3b:02.3; start refused — systemctl status vfbroker',
        ],
      ],
    );
  });

  it('finishes within its deadline when the broker never answers', async () => {
    const broker = new BrokerDouble();
    broker.mode = 'silent';
    const prepare = await hook(['dpdk-lab', 'prepare', 'begin', '-'], domainFixture('multifunction'), {
      broker,
      deadlineMs: 200,
    });
    assert.deepEqual(
      [prepare.exitCode, prepare.stderrLines],
      [
        75,
        [
          'vfbroker: broker not reachable within 0.2 s; VFs 0000:3b:02.1, 0000:3b:02.0, 0000:3b:02.7 not checked; start refused — systemctl status vfbroker',
        ],
      ],
    );
    const release = await hook(['dpdk-lab', 'release', 'end', 'shutdown'], domainFixture('multifunction'), {
      broker,
      deadlineMs: 200,
    });
    assert.deepEqual([release.exitCode, release.stderrLines], [0, []]);
  });
});

describe('qemu hook, connection life cycle', () => {
  it('closes the connection after the call, and one that arrives after the deadline', async () => {
    const broker = new BrokerDouble();
    await hook(['fec-du1', 'prepare', 'begin', '-'], domainFixture('single-hostdev'), { broker });
    assert.equal(broker.openConnections, 0);
    broker.mode = 'late';
    broker.lateMs = 150;
    const run = await hook(['fec-du1', 'prepare', 'begin', '-'], domainFixture('single-hostdev'), {
      broker,
      deadlineMs: 50,
    });
    assert.equal(run.exitCode, 75);
    await broker.lateConnection;
    assert.equal(broker.openConnections, 0);
  });
});

describe('qemu hook, sysfs decides the blast radius', () => {
  it('asks the broker about a device whose sysfs entries cannot be read', async () => {
    const failing: HostPci = {
      exists: (a) => host.exists(a),
      driver: (a) => host.driver(a),
      physfn: (a) =>
        a === '0000:65:00.0'
          ? Promise.reject(new KernelError('EACCES', `/sys/bus/pci/devices/${a}/physfn`, 'cannot read'))
          : host.physfn(a),
    };
    const run = await hook(['ml-train', 'prepare', 'begin', '-'], domainFixture('gpu-and-cx5'), {
      sysfs: failing,
    });
    assert.deepEqual(
      [run.exitCode, run.stderrLines],
      [1, ['vfbroker: VF 0000:65:00.0 is not managed by vfbroker; run `vfbroker pf status`']],
    );
  });

  it('leaves a device the host does not have to libvirt', async () => {
    const broker = new BrokerDouble();
    broker.mode = 'unreachable';
    const xml = domainFixture('single-hostdev').replace("bus='0x3b' slot='0x02'", "bus='0x99' slot='0x02'");
    const run = await hook(['fec-du1', 'prepare', 'begin', '-'], xml, { broker });
    assert.deepEqual([run.exitCode, run.stderrLines], [0, []]);
  });
});

describe('qemu hook, hostile or broken stdin', () => {
  const refusedAtPrepare = async (
    stdin: string | AsyncIterable<Uint8Array>,
    exitCode: number,
    message: RegExp,
  ) => {
    const run = await hook(['vm', 'prepare', 'begin', '-'], stdin, { deadlineMs: 200 });
    assert.equal(run.exitCode, exitCode);
    assert.equal(run.stderrLines.length, 1);
    assert.match(run.stderrLines[0] ?? '', message);
    assert.match(run.stderrLines[0] ?? '', /; no VF checked; prepare of guest "vm" refused$/);
    const release = await hook(['vm', 'release', 'end', 'failed'], stdin, { deadlineMs: 200 });
    assert.deepEqual(
      [release.exitCode, release.stderrLines, warnings(release)],
      [0, [], ['ignoring unreadable domain XML']],
    );
  };

  it('an entity bomb', async () => {
    const defs = [
      '<!ENTITY a "aaaaaaaaaa">',
      ...Array.from({ length: 9 }, (_, i) => `<!ENTITY a${i + 1} "${`&a${i === 0 ? '' : i};`.repeat(10)}">`),
    ];
    await refusedAtPrepare(
      `<!DOCTYPE domain [${defs.join('')}]><domain>&a9;</domain>`,
      64,
      /^vfbroker: the domain XML on stdin has a DOCTYPE declaration/,
    );
  });

  it('a DOCTYPE with an external entity', async () => {
    await refusedAtPrepare(
      `<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/shadow">]><domain><name>&x;</name></domain>`,
      64,
      /has a DOCTYPE declaration/,
    );
  });

  it('garbage, invalid UTF-8 and empty input', async () => {
    await refusedAtPrepare('GET / HTTP/1.1\r\n\r\n', 64, /is not well-formed XML/);
    const invalidUtf8 = Readable.from([Buffer.from([0x3c, 0x64, 0x3e, 0xff, 0xfe, 0x3c, 0x2f, 0x64, 0x3e])]);
    const run = await hook(['vm', 'prepare', 'begin', '-'], invalidUtf8);
    assert.deepEqual(run.stderrLines, [
      'vfbroker: the domain XML on stdin is not valid UTF-8; no VF checked; prepare of guest "vm" refused',
    ]);
    await refusedAtPrepare('', 64, /^vfbroker: the domain XML on stdin is empty;/);
  });

  it('a 50 MB document, refused after reading little more than the cap', async () => {
    let pulled = 0;
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    // Produces each chunk only when asked for it, so `pulled` is what the hook actually read.
    const fifty: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: () => {
          if (pulled >= 50 * 1024 * 1024) return Promise.resolve({ done: true, value: undefined });
          pulled += chunk.length;
          return Promise.resolve({ done: false, value: chunk });
        },
      }),
    };
    const run = await hook(['vm', 'prepare', 'begin', '-'], fifty);
    assert.deepEqual(
      [run.exitCode, run.stderrLines],
      [
        64,
        [
          'vfbroker: the domain XML on stdin is larger than 4194304 bytes; no VF checked; prepare of guest "vm" refused',
        ],
      ],
    );
    assert.ok(pulled <= 4 * 1024 * 1024 + chunk.length, `read ${pulled} bytes`);
  });

  it('a stdin that cannot be read', async () => {
    const broken: AsyncIterable<Uint8Array> = {
      [Symbol.asyncIterator]: () => ({
        next: () =>
          Promise.reject(Object.assign(new Error('EBADF: bad file descriptor, read'), { code: 'EBADF' })),
      }),
    };
    const run = await hook(['vm', 'prepare', 'begin', '-'], broken);
    assert.deepEqual(
      [run.exitCode, run.stderrLines],
      [
        69,
        [
          'vfbroker: the domain XML on stdin could not be read (EBADF); no VF checked; prepare of guest "vm" refused',
        ],
      ],
    );
  });

  it('a stdin that is never closed: the deadline fires', async () => {
    const neverEnds = (): AsyncIterable<Uint8Array> => ({
      [Symbol.asyncIterator]: () => ({
        next: () => new Promise<IteratorResult<Uint8Array>>(() => undefined),
      }),
    });
    const prepare = await hook(['vm', 'prepare', 'begin', '-'], neverEnds(), { deadlineMs: 100 });
    assert.deepEqual(
      [prepare.exitCode, prepare.stderrLines],
      [
        75,
        [
          'vfbroker: the domain XML on stdin was not closed before the hook\'s deadline; no VF checked; prepare of guest "vm" refused',
        ],
      ],
    );
    const stopped = await hook(['vm', 'stopped', 'end', '-'], neverEnds(), { deadlineMs: 100 });
    assert.deepEqual([stopped.exitCode, stopped.stderrLines], [0, []]);
    const unknown = await hook(['vm', 'reconnect', 'begin', '-'], neverEnds(), { deadlineMs: 100 });
    assert.deepEqual([unknown.exitCode, unknown.stderrLines], [0, []]);
  });
});
