/**
 * Fuzz targets: the places where untrusted input enters vfbroker (DESIGN.md §6), each with the
 * property it must keep whatever arrives — no crash (only a VfbError with a one-line message), no
 * token echoed back, and time and memory bounded. test/fuzz/ runs each with ≥ 10,000 cases
 * (`npm run fuzz`), test/integration/faults/fuzz-sample.test.ts with a few hundred on every
 * `npm test`, bench/reliability.ts counts them.
 *
 * Inputs are a mix of well-formed ones (so the deep paths are reached), mutations of them, hostile
 * shapes (alias bombs, entity bombs, deep nesting, huge arrays) and noise.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { DBusError, Message, Variant } from 'dbus-next';
import fc from 'fast-check';
import { stringify } from 'yaml';
import type { RotationState } from '../../src/broker/api.js';
import { MEMBERS } from '../../src/broker/dbus/members.js';
import { exportBroker } from '../../src/broker/dbus/service.js';
import { BrokerClient } from '../../src/dbus/client.js';
import { connectBus, type BusConnection } from '../../src/dbus/connection.js';
import { parseBrokerConfig } from '../../src/config/broker-config.js';
import { parseAccounts } from '../../src/config/accounts.js';
import { parsePolicyConfig } from '../../src/config/policy-config.js';
import { BUS_NAME, INTERFACE, METHODS, OBJECT_PATH, type MethodName } from '../../src/dbus/protocol.js';
import { DBUS_ERROR_PREFIX, ERROR_KINDS, VfbError } from '../../src/errors.js';
import type { HookLogger } from '../../src/hooks/hook-logger.js';
import { parseHookArgv } from '../../src/hooks/hook-argv.js';
import { runQemuHook } from '../../src/hooks/qemu-hook.js';
import { readDomainStatusXml } from '../../src/libvirt/domain-status.js';
import {
  formatPciAddress,
  isPciAddress,
  parseLibvirtPciAddress,
  parsePciAddress,
  type PciAddress,
} from '../../src/pci/address.js';
import type { SysfsSimulator } from '../../src/sysfs/simulator.js';
import { FixedBroker } from '../integration/dbus/fixture.js';
import { BrokerDouble } from '../unit/hooks/broker-double.js';
import { simulatedHost } from '../unit/hooks/simulated-host.js';
import { CURRENT_TOKEN, DOMAIN_FIXTURES, domainFixture } from '../unit/libvirt/domain-fixtures.js';
import { HOOK_CALLER } from './direct-hook.js';
import { startDbusDaemon } from '../support/dbus-daemon.js';
import { statusXml } from '../support/libvirt-run.js';
import { captureLogs } from '../support/log-capture.js';
import { repoPath } from '../support/repo.js';

export interface FuzzStats {
  readonly target: string;
  readonly cases: number;
  /** The slowest single case. */
  readonly maxCaseMs: number;
  /** Heap growth over the run (after a GC when node runs with --expose-gc). */
  readonly heapGrowthBytes: number;
}

export interface FuzzTarget {
  readonly name: string;
  /** Runs `numRuns` cases; rejects with fast-check's counterexample when the property breaks. */
  run(numRuns: number, seed?: number): Promise<FuzzStats>;
}

/** Every exit status the hook may end with: accepted, refused, or an error's catalogue status. */
const HOOK_EXITS = new Set([0, 1, ...Object.values(ERROR_KINDS).map((k) => k.exit)]);
const UUID_SHAPE = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** A VfbError with a message on one line that quotes none of `secrets`; anything else fails. */
export function assertCleanError(err: unknown, secrets: readonly string[] = []): asserts err is VfbError {
  if (!(err instanceof VfbError)) throw err;
  assert.ok(!/[\r\n]/.test(err.message), `a message spans lines: ${JSON.stringify(err.message)}`);
  assert.ok(Object.hasOwn(ERROR_KINDS, err.code), `unknown code ${err.code}`);
  for (const s of secrets)
    assert.ok(!err.message.toLowerCase().includes(s.toLowerCase()), 'a secret was echoed');
}

async function measured<Ts extends unknown[]>(
  target: string,
  numRuns: number,
  seed: number | undefined,
  property: (check: (body: () => Promise<void>) => Promise<void>) => fc.IAsyncPropertyWithHooks<Ts>,
): Promise<FuzzStats> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let maxCaseMs = 0;
  let cases = 0;
  const check = async (body: () => Promise<void>): Promise<void> => {
    const started = performance.now();
    await body();
    maxCaseMs = Math.max(maxCaseMs, performance.now() - started);
    cases++;
  };
  await fc.assert(property(check), { numRuns, ...(seed === undefined ? {} : { seed }) });
  gc?.();
  return { target, cases, maxCaseMs, heapGrowthBytes: process.memoryUsage().heapUsed - heapBefore };
}

// ---------------------------------------------------------------------------------------------
// PCI addresses

const hexDigits = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF'), minLength: min, maxLength: max });

const addressLike = fc.oneof(
  fc
    .tuple(hexDigits(0, 9), hexDigits(0, 3), hexDigits(0, 3), fc.string({ maxLength: 2 }))
    .map(([d, b, s, f]) => `${d}:${b}:${s}.${f}`),
  fc
    .tuple(hexDigits(1, 3), hexDigits(1, 3), fc.integer({ min: 0, max: 9 }))
    .map(([b, s, f]) => `${b}:${s}.${f}`),
  fc.uuid(),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom('0000:3b:02.1', '../../etc/passwd', '0000:3b:02.1\0', ' 0000:3b:02.1', '0000:3b:02.1/..'),
);

const partsArb = fc.record({
  domain: fc.integer({ min: 0, max: 0xffffffff }),
  bus: fc.integer({ min: 0, max: 0xff }),
  slot: fc.integer({ min: 0, max: 0x1f }),
  function: fc.integer({ min: 0, max: 7 }),
});

const cNumber = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((n) => `0x${n.toString(16)}`),
  fc.integer({ min: 0, max: 0xffff }).map((n) => `0${n.toString(8)}`),
  fc.integer({ min: 0, max: 0xffff }).map(String),
  fc.string({ maxLength: 20 }),
);

export const pciTarget: FuzzTarget = {
  name: 'PCI addresses',
  run: (numRuns, seed) =>
    measured('PCI addresses', numRuns, seed, (check) =>
      fc.asyncProperty(
        addressLike,
        fc.boolean(),
        partsArb,
        fc.record({
          domain: fc.option(cNumber, { nil: undefined }),
          bus: fc.option(cNumber, { nil: undefined }),
          slot: fc.option(cNumber, { nil: undefined }),
          function: fc.option(cNumber, { nil: undefined }),
        }),
        (input, lenient, parts, attrs) =>
          check(async () => {
            let parsed: PciAddress | null = null;
            try {
              parsed = parsePciAddress(input, { lenient });
            } catch (err) {
              // Only short inputs are quoted: a token passed as an address never is.
              assertCleanError(err, input.length > 16 ? [input] : []);
            }
            if (parsed !== null) {
              assert.ok(isPciAddress(parsed), `${parsed} is not canonical`);
              assert.ok(/^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$/.test(parsed));
              if (!lenient) assert.equal(parsed, input);
            }
            if (!lenient) assert.equal(isPciAddress(input), parsed !== null);
            const formatted = formatPciAddress(parts);
            assert.equal(parsePciAddress(formatted), formatted);
            try {
              assert.ok(isPciAddress(parseLibvirtPciAddress(attrs)));
            } catch (err) {
              assertCleanError(
                err,
                Object.values(attrs).filter((v): v is string => (v?.length ?? 0) > 16),
              );
            }
            await Promise.resolve();
          }),
      ),
    ),
};

// ---------------------------------------------------------------------------------------------
// Config and policy YAML

const shippedBrokerYaml = (): string => readFileSync(repoPath('etc', 'vfbroker', 'broker.yaml'), 'utf8');
const shippedPolicyYaml = (): string => readFileSync(repoPath('etc', 'vfbroker', 'policy.yaml'), 'utf8');

/** `levels` anchors, each a list of `width` aliases of the one before: width^levels nodes if expanded. */
function aliasBomb(levels: number, width: number): string {
  const lines = ['a0: &a0 [x]'];
  for (let i = 1; i <= levels; i++) {
    lines.push(`a${i}: &a${i} [${Array.from({ length: width }, () => `*a${i - 1}`).join(', ')}]`);
  }
  return lines.join('\n') + '\n';
}

function nested(depth: number, flow: boolean): string {
  return flow
    ? '['.repeat(depth) + ']'.repeat(depth)
    : Array.from({ length: depth }, (_, i) => `${' '.repeat(i * 2)}k${i}:`).join('\n') + ' x\n';
}

/** A random edit: delete, duplicate or insert at a random place. */
function mutate(text: string, cut: number, len: number, insert: string): string {
  const at = cut % (text.length + 1);
  return text.slice(0, at) + insert + text.slice(Math.min(text.length, at + len));
}

const yamlNoise = fc.string({
  unit: fc.constantFrom(...':-&*!|>{}[]#\n "\'%@`?,abc01 \t'.split('')),
  maxLength: 400,
});

function yamlInputs(seedText: () => string): fc.Arbitrary<string> {
  const seed = seedText();
  return fc.oneof(
    {
      weight: 3,
      arbitrary: fc.tuple(fc.nat(), fc.nat({ max: 40 }), yamlNoise).map(([c, l, i]) => mutate(seed, c, l, i)),
    },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 6 }).map((v) => stringify(v)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 12 }))
        .map(([l, w]) => aliasBomb(l, w)),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(fc.integer({ min: 1, max: 3000 }), fc.boolean()).map(([d, f]) => nested(d, f)),
    },
    { weight: 2, arbitrary: yamlNoise },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  );
}

export const configTarget: FuzzTarget = {
  name: 'config and policy YAML',
  run: (numRuns, seed) => {
    const accounts = parseAccounts('root:x:0:0::/root:/bin/sh\n', 'root:x:0:\n', {
      passwdFile: '/etc/passwd',
      groupFile: '/etc/group',
    });
    return measured('config and policy YAML', numRuns, seed, (check) =>
      fc.asyncProperty(yamlInputs(shippedBrokerYaml), yamlInputs(shippedPolicyYaml), (broker, policy) =>
        check(async () => {
          try {
            parseBrokerConfig(broker, '/etc/vfbroker/broker.yaml', { hostname: 'fuzz' });
          } catch (err) {
            assertCleanError(err);
          }
          try {
            parsePolicyConfig(policy, '/etc/vfbroker/policy.yaml', accounts);
          } catch (err) {
            assertCleanError(err);
          }
          await Promise.resolve();
        }),
      ),
    );
  },
};

// ---------------------------------------------------------------------------------------------
// D-Bus method arguments (src/broker/dbus/validate.ts, members.ts)

const uuidish = fc.oneof(
  fc.uuid(),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.string({ maxLength: 40 }),
  fc.constant(''),
);
const wireString = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 60 }) },
  { weight: 2, arbitrary: addressLike },
  { weight: 2, arbitrary: fc.uuid() },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 60 }) },
  { weight: 1, arbitrary: fc.integer({ min: 4000, max: 70_000 }).map((n) => 'x'.repeat(n)) },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', 'a\nb', '\u202e', '\ud800', 'vm\u0007') },
);
const pair = fc.tuple(wireString, wireString);
const devicesArb = fc.oneof(
  { weight: 5, arbitrary: fc.array(pair, { maxLength: 8 }) },
  { weight: 1, arbitrary: fc.array(pair, { minLength: 250, maxLength: 300 }) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 9_000, max: 10_000 })
      .map((n) => Array.from({ length: n }, () => ['0000:3b:02.1', ''])),
  },
  { weight: 1, arbitrary: fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 5 }) },
);
const anyValue = fc.oneof(
  wireString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.anything({ maxDepth: 2 }),
  devicesArb,
);

/** Bodies of the right signature with hostile values, and bodies of the wrong shape. */
function bodyFor(member: MethodName): fc.Arbitrary<unknown[]> {
  const typed = METHODS[member].in.map((arg) => {
    switch (arg.type) {
      case 's':
        return fc.oneof(wireString, uuidish);
      case 'u':
        return fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer(), fc.double());
      case 'b':
        return fc.oneof(fc.boolean(), anyValue);
      case 'a(ss)':
        return devicesArb;
      default:
        return anyValue;
    }
  });
  return fc.oneof(
    { weight: 4, arbitrary: fc.tuple<unknown[]>(...typed) },
    { weight: 1, arbitrary: fc.array(anyValue, { maxLength: 4 }) },
  );
}

const memberCall = fc
  .constantFrom(...(Object.keys(METHODS) as MethodName[]))
  .chain((member) => bodyFor(member).map((body) => ({ member, body })));

/** The UUID-shaped values of a call that may be tokens: all but a guest UUID, which is no secret. */
function secretsOf(member: string, body: readonly unknown[]): string[] {
  const guestFirst = member === 'PrepareGuest' || member === 'GuestStarted' || member === 'ReleaseGuest';
  return uuidsIn(guestFirst ? body.slice(1) : body);
}

function uuidsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(...(value.match(UUID_SHAPE) ?? []));
  else if (Array.isArray(value)) for (const v of value) uuidsIn(v, out);
  return out;
}

/** The D-Bus tests' fixed broker, minus the two calls it makes hang or fail on purpose. */
class FuzzBroker extends FixedBroker {
  override setNumVfs(): Promise<void> {
    return Promise.resolve();
  }
  override rotate(): Promise<RotationState> {
    return Promise.resolve('done');
  }
}

export const dbusArgsTarget: FuzzTarget = {
  name: 'D-Bus method arguments',
  run: (numRuns, seed) => {
    const api = new FuzzBroker();
    return measured('D-Bus method arguments', numRuns, seed, (check) =>
      fc.asyncProperty(memberCall, ({ member, body }) =>
        check(async () => {
          const secrets = secretsOf(member, body);
          let call;
          try {
            call = MEMBERS[member](body);
          } catch (err) {
            assertCleanError(err, secrets);
            assert.equal(err.code, 'INVALID_ARGUMENT');
            return;
          }
          try {
            const reply = await call(api, HOOK_CALLER);
            assert.ok(Array.isArray(reply));
          } catch (err) {
            assertCleanError(err, secrets);
          }
        }),
      ),
    );
  },
};

// ---------------------------------------------------------------------------------------------
// The libvirt hook: argv and domain XML

const ops = fc.constantFrom(
  'prepare',
  'start',
  'started',
  'stopped',
  'release',
  'migrate',
  'restore',
  'reconnect',
  'attach',
  '-',
);
const subops = fc.constantFrom('begin', 'end', '-');
const argvArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.string({ maxLength: 30 }),
        ops,
        subops,
        fc.constantFrom('-', 'shutdown', 'from snapshot', 'failed'),
      )
      .map((a) => [...a]),
  },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.oneof(fc.string({ maxLength: 50 }), ops, fc.string({ unit: 'grapheme', maxLength: 20 })),
      { maxLength: 7 },
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.integer({ min: 1000, max: 20_000 }).map((n) => 'n'.repeat(n)),
        ops,
      )
      .map((a) => [...a, 'begin', '-']),
  },
);

const HOST_VFS = [
  '0000:3b:02.0',
  '0000:3b:02.1',
  '0000:3b:02.7',
  '0000:3b:03.7',
  '0000:af:02.3',
  '0000:17:00.3',
  '0000:65:00.0',
];
const attrValue = fc.oneof(
  fc.constantFrom('0x0000', '0x3b', '0x02', '0x1', '0xaf', '59', '073', '0x10000', '0xffffffff', '-1', ''),
  cNumber,
);
const escapeXml = (s: string) => s.replace(/[<&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

interface FuzzHostdev {
  readonly kind: 'hostdev' | 'interface';
  readonly address: Readonly<Record<string, string>>;
  readonly alias: string | null;
  readonly token: string | null;
}

const hostdevArb: fc.Arbitrary<FuzzHostdev> = fc.record({
  kind: fc.constantFrom('hostdev', 'interface'),
  address: fc.oneof(
    fc.constantFrom(...HOST_VFS).map((a) => {
      const [d, b, sf] = a.split(':') as [string, string, string];
      const [s, f] = sf.split('.') as [string, string];
      return { domain: `0x${d}`, bus: `0x${b}`, slot: `0x${s}`, function: `0x${f}` };
    }),
    fc.record({ domain: attrValue, bus: attrValue, slot: attrValue, function: attrValue }),
  ),
  alias: fc.option(fc.oneof(fc.constant('ua-vf0'), fc.constant('ua-vf1'), fc.string({ maxLength: 20 })), {
    nil: null,
  }),
  token: fc.option(fc.oneof(fc.constant(CURRENT_TOKEN), fc.uuid(), fc.string({ maxLength: 40 })), {
    nil: null,
  }),
});

function domainFromParts(name: string, uuid: string, devices: readonly FuzzHostdev[]): string {
  const devs = devices.map((d) => {
    const addr = Object.entries(d.address)
      .map(([k, v]) => `${k}='${escapeXml(v)}'`)
      .join(' ');
    const alias = d.alias === null ? '' : `<alias name='${escapeXml(d.alias)}'/>`;
    return d.kind === 'hostdev'
      ? `<hostdev mode='subsystem' type='pci' managed='yes'><source><address ${addr}/></source>${alias}</hostdev>`
      : `<interface type='hostdev' managed='yes'><source><address type='pci' ${addr}/></source>${alias}</interface>`;
  });
  const overrides = devices
    .filter((d) => d.alias !== null && d.token !== null)
    .map(
      (d) =>
        `<qemu:device alias='${escapeXml(d.alias ?? '')}'><qemu:frontend><qemu:property name='vf-token' type='string' value='${escapeXml(d.token ?? '')}'/></qemu:frontend></qemu:device>`,
    );
  return (
    `<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><name>${escapeXml(name)}</name><uuid>${escapeXml(uuid)}</uuid>` +
    `<devices>${devs.join('')}</devices>` +
    (overrides.length > 0 ? `<qemu:override>${overrides.join('')}</qemu:override>` : '') +
    '</domain>'
  );
}

const structuredXml = fc
  .tuple(fc.string({ maxLength: 30 }), uuidish, fc.array(hostdevArb, { maxLength: 6 }))
  .map(([name, uuid, devices]) => domainFromParts(name, uuid, devices));

const xmlNoise = fc.string({
  unit: fc.constantFrom(...'<>/=\'"&;!-[]? :#xabc0123\n'.split('')),
  maxLength: 300,
});

const ENTITY_BOMB =
  '<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">' +
  '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><domain><name>&d;</name></domain>';
const EXTERNAL_ENTITY =
  '<?xml version="1.0"?><!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]><domain><name>&x;</name></domain>';

const xmlText = fc.oneof(
  { weight: 5, arbitrary: structuredXml },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...DOMAIN_FIXTURES), fc.nat(), fc.nat({ max: 30 }), xmlNoise)
      .map(([f, c, l, i]) => mutate(domainFixture(f), c, l, i)),
  },
  { weight: 1, arbitrary: fc.constantFrom(ENTITY_BOMB, EXTERNAL_ENTITY) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 1, max: 5000 })
      .map((d) => `<domain>${'<a>'.repeat(d)}${'</a>'.repeat(d)}</domain>`),
  },
  { weight: 1, arbitrary: xmlNoise },
);
const stdinBytes = fc.oneof(
  { weight: 8, arbitrary: xmlText.map((t) => Buffer.from(t)) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(structuredXml, fc.constantFrom('utf16le', 'latin1'))
      .map(([t, enc]) =>
        Buffer.concat([
          Buffer.from(enc === 'utf16le' ? [0xff, 0xfe] : []),
          Buffer.from(t, enc as BufferEncoding),
        ]),
      ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 70_000, max: 100_000 }).map((n) => Buffer.alloc(n, 0x61)) },
);

// ---------------------------------------------------------------------------------------------
// libvirt's status files (the broker reads them to recognise a guest's QEMU: SetNumVfs)

/** A guest's live definition carries its vf-tokens: one planted in every status file. */
const STATUS_TOKEN = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';

const statusText = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.string({ maxLength: 20 }),
        uuidish,
        fc.oneof(fc.nat({ max: 5_000_000 }), fc.constant(-1)),
        fc.constantFrom('running', 'paused', 'shutoff', 'crashed', '', 'RUNNING', 'x y'),
        fc.nat(),
        fc.nat({ max: 30 }),
        xmlNoise,
      )
      .map(([name, uuid, pid, state, c, l, i]) =>
        mutate(
          statusXml({ name, uuid, pid, state }).replace(
            '</devices>',
            `<qemu:override xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'><qemu:device alias='hostdev0'><qemu:frontend><qemu:property name='vf-token' type='string' value='${STATUS_TOKEN}'/></qemu:frontend></qemu:device></qemu:override></devices>`,
          ),
          c,
          l,
          i,
        ),
      ),
  },
  { weight: 1, arbitrary: fc.constantFrom(ENTITY_BOMB, EXTERNAL_ENTITY) },
  { weight: 1, arbitrary: xmlNoise },
);

export const statusFileTarget: FuzzTarget = {
  name: 'libvirt status files',
  run: (numRuns, seed) =>
    measured('libvirt status files', numRuns, seed, (check) =>
      fc.asyncProperty(statusText, (text) =>
        check(() => {
          try {
            const status = readDomainStatusXml(text, 'the status file');
            assert.ok(Number.isSafeInteger(status.pid) && status.pid >= 0, `pid ${status.pid}`);
            assert.match(status.state, /^[a-z]{1,32}$/);
            assert.match(status.uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
          } catch (err) {
            // The file holds the guest's definition: an error quotes none of it, tokens least of all.
            assertCleanError(err, [STATUS_TOKEN]);
          }
          return Promise.resolve();
        }),
      ),
    ),
};

/** Collects what the hook logs, so the properties can check it for tokens. */
function recordingLogger(lines: string[]): HookLogger {
  const rec = (fields: object, message: string) => {
    lines.push(`${message} ${JSON.stringify(fields)}`);
  };
  return { debug: rec, info: rec, warn: rec, error: rec };
}

export const hookTarget: FuzzTarget = {
  name: 'hook argv and domain XML',
  async run(numRuns, seed) {
    const sysfs: SysfsSimulator = await simulatedHost();
    return measured('hook argv and domain XML', numRuns, seed, (check) =>
      fc.asyncProperty(argvArb, stdinBytes, fc.boolean(), (argv, bytes, reachable) =>
        check(async () => {
          const broker = new BrokerDouble();
          broker.mode = reachable ? 'up' : 'unreachable';
          const logged: string[] = [];
          const result = await runQemuHook({
            argv,
            stdin: Readable.from([bytes]),
            sysfs,
            connectBroker: broker.connect,
            logger: recordingLogger(logged),
            deadlineMs: 2_000,
            maxInputBytes: 64 * 1024,
          });
          assert.ok(HOOK_EXITS.has(result.exitCode), `exit ${result.exitCode}`);
          for (const line of result.stderrLines) {
            assert.ok(!/[\r\n]/.test(line), `a stderr line spans lines: ${JSON.stringify(line)}`);
          }
          const { op } = parseHookArgv(argv);
          // Only prepare and start may fail: elsewhere a failing exit kills a guest or is ignored.
          if (op !== 'prepare' && op !== 'start') assert.equal(result.exitCode, 0);
          // Tokens presented in the XML never come back out, in any case.
          const tokens = presentedTokens(bytes).filter((t) => !argv.some((a) => a.toLowerCase().includes(t)));
          const out = [...result.stderrLines, ...logged].join('\n').toLowerCase();
          for (const t of tokens)
            assert.ok(!out.includes(t.toLowerCase()), 'a presented token came back out');
          assert.equal(broker.openConnections, 0, 'a broker connection was left open');
        }),
      ),
    );
  },
};

/** The UUID-shaped values of vf-token properties in the input, lower case. */
function presentedTokens(bytes: Buffer): string[] {
  const text = bytes.toString('latin1');
  const values = [...text.matchAll(/name=['"]vf-token['"][^>]*?value=['"]([^'"]*)['"]/g)].map(
    (m) => m[1] ?? '',
  );
  return [...new Set(values.flatMap((v) => v.match(UUID_SHAPE) ?? []).map((t) => t.toLowerCase()))];
}

// ---------------------------------------------------------------------------------------------
// Calls through a real bus: the service's routing, signature checks and error replies

interface RawCall {
  readonly path: string;
  readonly iface: string | undefined;
  readonly member: string;
  readonly signature: string;
  readonly body: unknown[];
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Signatures with a body of that shape: right ones, wrong ones, containers, huge ones. */
const signedBody: fc.Arbitrary<{ signature: string; body: unknown[] }> = fc.oneof(
  fc.constant({ signature: '', body: [] as unknown[] }),
  wireString.map((v) => ({ signature: 's', body: [v] })),
  fc.tuple(wireString, wireString).map((b) => ({ signature: 'ss', body: [...b] })),
  fc
    .tuple(uuidish, wireString, devicesArb.filter(isPairs))
    .map((b) => ({ signature: 'ssa(ss)', body: [...b] })),
  fc.tuple(wireString, u32).map((b) => ({ signature: 'su', body: [...b] })),
  fc.tuple(wireString, fc.boolean()).map((b) => ({ signature: 'sb', body: [...b] })),
  u32.map((v) => ({ signature: 'u', body: [v] })),
  fc.boolean().map((v) => ({ signature: 'b', body: [v] })),
  fc.double({ noNaN: true }).map((v) => ({ signature: 'd', body: [v] })),
  fc.array(wireString, { maxLength: 20 }).map((v) => ({ signature: 'as', body: [v] })),
  fc
    .integer({ min: 9_000, max: 10_000 })
    .map((n) => ({ signature: 'as', body: [Array.from({ length: n }, (_, i) => `s${i}`)] })),
  fc.uint8Array({ maxLength: 2000 }).map((v) => ({ signature: 'ay', body: [Buffer.from(v)] })),
  fc.dictionary(fc.string({ maxLength: 10 }), wireString, { maxKeys: 5 }).map((d) => ({
    signature: 'a{sv}',
    body: [Object.fromEntries(Object.entries(d).map(([k, v]) => [k, new Variant('s', v)]))],
  })),
  fc.tuple(wireString, wireString, wireString).map((b) => ({ signature: '(sss)', body: [[...b]] })),
);

function isPairs(v: unknown): v is [string, string][] {
  return (
    Array.isArray(v) &&
    v.every((p) => Array.isArray(p) && p.length === 2 && p.every((x) => typeof x === 'string'))
  );
}

const rawCall: fc.Arbitrary<RawCall> = fc
  .record({
    path: fc.constantFrom(OBJECT_PATH, OBJECT_PATH, OBJECT_PATH, '/', '/org', '/org/vfbroker', '/x/y'),
    iface: fc.constantFrom(
      INTERFACE,
      INTERFACE,
      undefined,
      'org.freedesktop.DBus.Properties',
      'org.freedesktop.DBus.Introspectable',
      'org.freedesktop.DBus.Peer',
      'org.example.Nope',
    ),
    member: fc.constantFrom(
      ...Object.keys(METHODS),
      'Introspect',
      'Ping',
      'GetMachineId',
      'Get',
      'GetAll',
      'Set',
      'Nope',
    ),
  })
  .chain((head) => signedBody.map((b) => ({ ...head, ...b })));

/** Error names the broker itself may answer with; the bus daemon's own replies are its business. */
const BROKER_ERRORS = new Set([
  ...Object.values(ERROR_KINDS).map((k) => `${DBUS_ERROR_PREFIX}${k.dbus}`),
  'org.freedesktop.DBus.Error.UnknownMethod',
  'org.freedesktop.DBus.Error.UnknownObject',
  'org.freedesktop.DBus.Error.UnknownInterface',
  'org.freedesktop.DBus.Error.UnknownProperty',
  'org.freedesktop.DBus.Error.InvalidArgs',
  'org.freedesktop.DBus.Error.FileNotFound',
]);

const NO_EVENTS = { subscribe: () => () => undefined };

export const busTarget: FuzzTarget = {
  name: 'D-Bus calls through a real bus',
  async run(numRuns, seed) {
    const bus = await startDbusDaemon();
    const logs = captureLogs('info');
    const server = await connectBus({ address: bus.address });
    const exported = await exportBroker(server, new FuzzBroker(), NO_EVENTS, { logger: logs.logger });
    const client = await connectBus({ address: bus.address });
    try {
      const stats = await measured('D-Bus calls through a real bus', numRuns, seed, (check) =>
        fc.asyncProperty(rawCall, (call) =>
          check(async () => {
            const message = new Message({
              destination: BUS_NAME,
              path: call.path,
              ...(call.iface === undefined ? {} : { interface: call.iface }),
              member: call.member,
              signature: call.signature,
              body: call.body,
            });
            try {
              await client.call(message, { timeoutMs: 10_000 });
            } catch (err) {
              if (err instanceof VfbError) {
                // Refused on our side before sending (a NUL in a string): never a timeout.
                assert.equal(err.code, 'INVALID_ARGUMENT', err.message);
                return;
              }
              assert.ok(err instanceof DBusError, String(err));
              const sender = (err.reply as Message | undefined)?.sender;
              if (sender === 'org.freedesktop.DBus') return;
              assert.ok(BROKER_ERRORS.has(err.type), `the broker answered ${err.type}`);
              assert.ok(!err.text.includes('    at '), `a stack trace: ${JSON.stringify(err.text)}`);
              // The standard interfaces name what was asked for (an interface, a property) back to
              // the caller; the broker's own methods promise one line and no echo of a token.
              if (!err.type.startsWith(DBUS_ERROR_PREFIX)) return;
              assert.ok(!/[\r\n]/.test(err.text), `error text: ${JSON.stringify(err.text)}`);
              for (const t of secretsOf(call.member, call.body))
                assert.ok(!err.text.toLowerCase().includes(t.toLowerCase()), 'a secret was echoed');
            }
          }),
        ),
      );
      await assertStillServing(bus.address);
      await assertInvalidUtf8Refused(bus.address);
      await assertStillServing(bus.address);
      return stats;
    } finally {
      client.close();
      await exported.close();
      server.close();
      await bus.stop();
    }
  },
};

async function assertStillServing(address: string): Promise<void> {
  const c = await BrokerClient.connect({ address, callTimeoutMs: 10_000 });
  try {
    assert.equal((await c.status()).pfs, 2);
  } finally {
    c.close();
  }
}

/**
 * A call whose string is not UTF-8, which no library sends: marshalled by dbus-next, one byte
 * patched, written to the socket. The bus must drop that connection; the broker must not notice.
 */
async function assertInvalidUtf8Refused(address: string): Promise<void> {
  const forger = await connectBus({ address });
  try {
    const marker = 'MARKER-0000:3b:02.1';
    const message = new Message({
      destination: BUS_NAME,
      path: OBJECT_PATH,
      interface: INTERFACE,
      member: 'GetToken',
      signature: 's',
      body: [marker],
    });
    message.serial = forger.bus.newSerial();
    const [bytes] = marshall(message);
    const at = bytes.indexOf(Buffer.from(marker));
    assert.ok(at > 0);
    bytes[at] = 0xff;
    const closed = new Promise<void>((resolve) => forger.onClose(() => resolve()));
    rawStream(forger).write(bytes);
    await closed;
  } finally {
    forger.close();
  }
}

const requireCjs = createRequire(import.meta.url);
const { marshall } = requireCjs('dbus-next/lib/message.js') as {
  marshall: (m: Message) => [Buffer, number[]];
};

/** dbus-next's socket, which src/dbus/connection.ts reaches for the same way. */
function rawStream(connection: BusConnection): { write(b: Buffer): void } {
  const stream = (connection.bus as unknown as { _connection?: { stream?: { write(b: Buffer): void } } })
    ._connection?.stream;
  assert.ok(stream, 'dbus-next no longer exposes its socket');
  return stream;
}

export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  hookTarget,
  statusFileTarget,
  dbusArgsTarget,
  busTarget,
  configTarget,
  pciTarget,
];
