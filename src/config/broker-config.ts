/**
 * /etc/vfbroker/broker.yaml: what the broker serves and where it keeps things. The file is checked
 * against a strict schema (the input type), then resolved (the BrokerConfig type): defaults filled,
 * paths made absolute against the file's directory, durations in milliseconds, per-PF rotation
 * settings merged with the global ones, and the whole deep-frozen. etc/vfbroker/broker.yaml
 * documents every key.
 */
import { hostname as osHostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import * as z from 'zod';
import type { PciAddress } from '../pci/address.js';
import { isSysfsName } from '../sysfs/names.js';
import { deepFreeze } from './freeze.js';
import {
  choice,
  duration,
  expecting,
  filePath,
  freeMapping,
  integer,
  list,
  mapping,
  matching,
  oneOf,
  pciAddress,
} from './schema.js';
import { expectation, quote } from './wording.js';
import { YamlSource, type ReadOptions, type SourceLocation } from './yaml-source.js';

export const DEFAULT_BROKER_CONFIG_PATH = '/etc/vfbroker/broker.yaml';
/** Where driverctl keeps the overrides it applies at boot (pci-<address> files). */
export const DEFAULT_DRIVERCTL_DIRECTORY = '/etc/driverctl.d';
/** Where libvirt's system qemu driver keeps a status file per running guest (<name>.xml). */
export const DEFAULT_LIBVIRT_RUN_DIRECTORY = '/run/libvirt/qemu';

/** Used in Vault paths (`<prefix>/<hostId>/pf/…`), so it stays a conservative DNS-like name. */
const HOST_ID = /^[a-z0-9][a-z0-9.-]{0,62}$/;
/** A Vault mount or path prefix: segments of letters, digits, `_` and `-`, separated by `/`. */
const VAULT_PATH = /^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/;
const PLUGIN_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
/** A VF index as `vfDrivers` keys are written: decimal, no leading zero (a PF has at most 256 VFs). */
const VF_INDEX = /^(?:0|[1-9][0-9]{0,2})$/;
/** `transport:key=value,…`, as in the D-Bus specification's "Server Addresses". */
const DBUS_ADDRESS = /^[a-z][a-z0-9-]*:[^\s;]*(?:;[a-z][a-z0-9-]*:[^\s;]*)*$/;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

const DRIVER_NAME = 'a driver name as sysfs shows it, like "igbvf"';

function brokerSchema(baseDirectory: string) {
  const path = () => filePath(baseDirectory);
  const vaultPath = (example: string) => matching(VAULT_PATH, `a Vault path like "${example}"`, 128);

  const vault = mapping({
    type: z.literal('vault'),
    address: vaultAddress(),
    caFile: path().optional(),
    auth: choice({
      tokenFile: path(),
      approle: mapping({
        roleIdFile: path(),
        secretIdFile: path(),
        mount: vaultPath('approle').default('approle'),
      }),
    }),
    mount: vaultPath('secret').default('secret'),
    prefix: vaultPath('vfbroker').default('vfbroker'),
    requestTimeoutMs: integer(100, 120_000).default(5_000),
  });
  const file = mapping({ type: z.literal('file'), directory: path().optional() });

  const rotation = {
    maxAge: duration(MINUTE, 3650 * DAY).optional(),
    drainTimeout: duration(1_000, 30 * DAY).optional(),
  };

  const pf = mapping({
    address: pciAddress(),
    plugin: matching(PLUGIN_NAME, 'a plugin name like "intel-fec"', 32).optional(),
    vfs: integer(0, 256),
    options: freeMapping().optional(),
    rotation: mapping(rotation).optional(),
    // Keys are checked with the PF's `vfs` in checkVfDrivers, which can name the limit.
    vfDrivers: z
      .record(
        z.string(),
        z.string(expecting(DRIVER_NAME)).refine(isSysfsName, expecting(DRIVER_NAME)),
        expecting('a mapping of VF index to driver, like { 3: igbvf }'),
      )
      .optional(),
  });

  return mapping({
    hostId: matching(
      HOST_ID,
      'a host id of lower-case letters, digits, "." and "-", like "node-7"',
      63,
    ).optional(),
    store: z.discriminatedUnion('type', [vault, file], {
      // No option matched: either the store is not a mapping, or its `type` is none of ours.
      error: (issue) =>
        issue.code === 'invalid_union'
          ? expectation('"vault" or "file"', (issue.input as Readonly<Record<string, unknown>>)['type'])
          : expectation('a mapping with type "vault" or "file"', issue.input),
    }),
    sysfs: choice({ root: path(), simulator: mapping({ fixture: path(), stateFile: path() }) }).optional(),
    driverctl: mapping({ directory: path().optional() }).prefault({}),
    libvirt: mapping({ runDirectory: path().default(DEFAULT_LIBVIRT_RUN_DIRECTORY) }).prefault({}),
    stateDirectory: path().default('/var/lib/vfbroker'),
    runtimeDirectory: path().default('/run/vfbroker'),
    plugins: mapping({ paths: list(path()).default([]) }).prefault({}),
    pfs: list(pf).default([]),
    rotation: mapping(rotation).prefault({}),
    hook: mapping({ brokerTimeoutMs: integer(100, 120_000).default(5_000) }).prefault({}),
    health: mapping({ checkInterval: duration(1_000, DAY).optional() }).prefault({}),
    dbus: mapping({
      busAddress: matching(
        DBUS_ADDRESS,
        'a D-Bus address like "unix:path=/run/dbus/system_bus_socket"',
        1024,
      ).optional(),
    }).prefault({}),
    log: mapping({ level: oneOf(LOG_LEVELS).default('info') }).prefault({}),
  });
}

/** broker.yaml as written (before defaults); for tools that generate one. */
export type BrokerConfigInput = z.input<ReturnType<typeof brokerSchema>>;
type Validated = z.output<ReturnType<typeof brokerSchema>>;

export type VaultAuthConfig =
  | { readonly method: 'token'; readonly tokenFile: string }
  | {
      readonly method: 'approle';
      readonly roleIdFile: string;
      readonly secretIdFile: string;
      readonly mount: string;
    };

export interface VaultStoreConfig {
  readonly type: 'vault';
  /** Origin only, e.g. `https://vault.example.net:8200`. */
  readonly address: string;
  readonly caFile: string | null;
  readonly auth: VaultAuthConfig;
  /** The KV v2 mount. */
  readonly mount: string;
  /** Secrets live at `<mount>/data/<prefix>/<hostId>/pf/<address>`. */
  readonly prefix: string;
  readonly requestTimeoutMs: number;
}

/** Tokens in 0600 files: for tests and demos, not for hosts where secrets must stay in Vault. */
export interface FileStoreConfig {
  readonly type: 'file';
  readonly directory: string;
}

export type SysfsConfig =
  | { readonly type: 'root'; readonly root: string }
  | { readonly type: 'simulator'; readonly fixture: string; readonly stateFile: string };

export interface RotationConfig {
  /** Rotate a PF's token when it is older than this; null never rotates on age. */
  readonly maxAgeMs: number | null;
  /** How long a drain rotation waits for guests to release the PF's VFs. */
  readonly drainTimeoutMs: number;
}

/**
 * A VF that `vfDrivers` puts on a kernel driver instead of the one its plugin chooses: an explicit
 * opt-in, since a VF of a PF on vfio-pci that a host driver uses is outside VF-token protection.
 */
export interface VfDriverConfig {
  readonly index: number;
  readonly driver: string;
  readonly location: SourceLocation;
}

export interface PfConfig {
  readonly address: PciAddress;
  /** The plugin named in the file; null lets the broker choose by PCI ID. */
  readonly plugin: string | null;
  readonly vfs: number;
  /** Checked by the plugin, which can point at `location` in its errors. */
  readonly options: Readonly<Record<string, unknown>>;
  /** The global rotation settings with this PF's own on top. */
  readonly rotation: RotationConfig;
  /** VFs opted in to a host kernel driver, by index (outside VF-token protection). */
  readonly vfDrivers: readonly VfDriverConfig[];
  readonly location: SourceLocation;
}

export interface BrokerConfig {
  /** The file this came from, for messages. */
  readonly file: string;
  readonly hostId: string;
  readonly store: VaultStoreConfig | FileStoreConfig;
  readonly sysfs: SysfsConfig;
  /** driverctl's overrides for this host; null when there are none to read (a simulated sysfs). */
  readonly driverctl: { readonly directory: string | null };
  /**
   * libvirt's qemu driver: the run directory whose status files say which process is which running
   * guest's QEMU (SetNumVfs for a guest that owns a PF).
   */
  readonly libvirt: { readonly runDirectory: string };
  readonly stateDirectory: string;
  readonly runtimeDirectory: string;
  readonly plugins: { readonly paths: readonly string[] };
  readonly pfs: readonly PfConfig[];
  readonly rotation: RotationConfig;
  readonly hook: { readonly brokerTimeoutMs: number };
  /** How often the broker checks that each PF is still up (its driver alive), and repairs it. */
  readonly health: { readonly checkIntervalMs: number };
  /** null: the system bus. */
  readonly dbus: { readonly busAddress: string | null };
  readonly log: { readonly level: LogLevel };
}

export interface BrokerConfigOptions {
  /** The default for hostId; the machine's hostname when absent. */
  readonly hostname?: string;
}

export async function loadBrokerConfig(
  path: string = DEFAULT_BROKER_CONFIG_PATH,
  options: BrokerConfigOptions & ReadOptions = {},
): Promise<BrokerConfig> {
  return resolveBrokerConfig(await YamlSource.read(path, options), options);
}

/** `sourceName` names the text in errors; relative paths in it resolve against its directory. */
export function parseBrokerConfig(
  text: string,
  sourceName: string,
  options: BrokerConfigOptions = {},
): BrokerConfig {
  return resolveBrokerConfig(YamlSource.parse(text, sourceName), options);
}

function resolveBrokerConfig(source: YamlSource, options: BrokerConfigOptions): BrokerConfig {
  const input = source.validate(brokerSchema(dirname(resolve(source.name))));
  checkDuplicatePfs(source, input.pfs);
  input.pfs.forEach((pf, i) => checkVfDrivers(source, i, pf));

  const rotation: RotationConfig = {
    maxAgeMs: input.rotation.maxAge ?? null,
    drainTimeoutMs: input.rotation.drainTimeout ?? 10 * MINUTE,
  };
  const store = input.store;
  const sysfs: SysfsConfig =
    input.sysfs === undefined
      ? { type: 'root', root: '/sys' }
      : input.sysfs.kind === 'root'
        ? { type: 'root', root: input.sysfs.value }
        : { type: 'simulator', ...input.sysfs.value };
  return deepFreeze<BrokerConfig>({
    file: source.name,
    hostId: input.hostId ?? hostIdFromHostname(source, options.hostname ?? osHostname()),
    store:
      store.type === 'vault'
        ? {
            type: 'vault',
            address: store.address,
            caFile: store.caFile ?? null,
            auth:
              store.auth.kind === 'tokenFile'
                ? { method: 'token', tokenFile: store.auth.value }
                : { method: 'approle', ...store.auth.value },
            mount: store.mount,
            prefix: store.prefix,
            requestTimeoutMs: store.requestTimeoutMs,
          }
        : { type: 'file', directory: store.directory ?? join(input.stateDirectory, 'tokens') },
    sysfs,
    driverctl: {
      // driverctl's files describe the devices of this host's /sys; a simulated or relocated sysfs
      // is another host, which has driverctl files only where broker.yaml says.
      directory:
        input.driverctl.directory ??
        (sysfs.type === 'root' && sysfs.root === '/sys' ? DEFAULT_DRIVERCTL_DIRECTORY : null),
    },
    libvirt: { runDirectory: input.libvirt.runDirectory },
    stateDirectory: input.stateDirectory,
    runtimeDirectory: input.runtimeDirectory,
    plugins: { paths: input.plugins.paths },
    pfs: input.pfs.map((pf, i) => ({
      address: pf.address,
      plugin: pf.plugin ?? null,
      vfs: pf.vfs,
      options: pf.options ?? {},
      rotation: {
        maxAgeMs: pf.rotation?.maxAge ?? rotation.maxAgeMs,
        drainTimeoutMs: pf.rotation?.drainTimeout ?? rotation.drainTimeoutMs,
      },
      vfDrivers: Object.entries(pf.vfDrivers ?? {})
        .map(([key, driver]) => ({
          index: Number(key),
          driver,
          location: source.locate(['pfs', i, 'vfDrivers', key]),
        }))
        .sort((a, b) => a.index - b.index),
      location: source.locate(['pfs', i]),
    })),
    rotation,
    hook: { brokerTimeoutMs: input.hook.brokerTimeoutMs },
    health: { checkIntervalMs: input.health.checkInterval ?? 15_000 },
    dbus: { busAddress: input.dbus.busAddress ?? null },
    log: { level: input.log.level },
  });
}

function checkDuplicatePfs(source: YamlSource, pfs: Validated['pfs']): void {
  const first = new Map<PciAddress, number>();
  pfs.forEach((pf, i) => {
    const earlier = first.get(pf.address);
    if (earlier !== undefined) {
      const line = source.locate(['pfs', earlier, 'address']).line;
      throw source.error(['pfs', i, 'address'], `PF ${pf.address} is listed twice, here and at line ${line}`);
    }
    first.set(pf.address, i);
  });
}

/** Each `vfDrivers` key names a VF the PF will have: an index below its `vfs`. */
function checkVfDrivers(source: YamlSource, i: number, pf: Validated['pfs'][number]): void {
  for (const key of Object.keys(pf.vfDrivers ?? {})) {
    const path = ['pfs', i, 'vfDrivers', key];
    const range = pf.vfs === 0 ? 'none: vfs is 0' : `0 to ${pf.vfs - 1}, as vfs is ${pf.vfs}`;
    if (!VF_INDEX.test(key)) throw source.error(path, `expected a VF index (${range}), found ${quote(key)}`);
    if (Number(key) >= pf.vfs)
      throw source.error(path, `the PF has no VF ${key}: its VF indexes are ${range}`);
  }
}

function hostIdFromHostname(source: YamlSource, hostname: string): string {
  const id = hostname.toLowerCase();
  if (HOST_ID.test(id)) return id;
  throw source.error(
    [],
    `hostId is not set and the hostname ${quote(hostname)} cannot serve as one; set hostId to lower-case letters, digits, "." and "-"`,
  );
}

/** Vault over https; plain http only where the traffic cannot leave the host. */
function vaultAddress() {
  const what =
    'an https:// URL such as "https://vault.example.net:8200" (http:// only to a loopback address)';
  return z
    .string(expecting(what))
    .max(2048, expecting(what))
    .transform((text, ctx): string => {
      const fail = (message: string) => {
        ctx.addIssue({ code: 'custom', input: text, message });
        return z.NEVER;
      };
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        return fail(expectation(what, text));
      }
      // Checked before anything that would echo the text: credentials in a URL are secrets.
      if (url.username !== '' || url.password !== '')
        return fail(`expected ${what} without a user name or password`);
      if (url.pathname !== '/' || url.search !== '' || url.hash !== '')
        return fail(`expected ${what} without a path, query or fragment`);
      if (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url.hostname)))
        return url.origin;
      return fail(expectation(what, text));
    });
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
