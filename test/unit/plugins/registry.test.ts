/**
 * Loading plugins (built-in and by path) and choosing one for a PF: explicit choice, PCI ID, and
 * the generic fallback only where it is safe.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { PciAddress } from '../../../src/pci/address.js';
import { PluginRegistry } from '../../../src/plugins/registry.js';
import { captureLogs } from '../../support/log-capture.js';
import { PF_STUB_HOST } from './support/scenarios.js';
import { makeWorld, type World } from './support/world.js';
import { rejection } from '../../support/rejection.js';

const logger = captureLogs().logger;
const PF_STUB = fileURLToPath(new URL('./fixtures/pf-stub-plugin.js', import.meta.url));

/** A plugin module as plain JS; its plugin only has to exist, not to work. */
function moduleSource(manifest: Record<string, unknown>): string {
  const fail = '() => { throw new Error("not for this test"); }';
  return `const manifest = ${JSON.stringify(manifest)};
export default { manifest, create: () => ({ manifest, plan: ${fail}, apply: ${fail}, status: ${fail}, down: ${fail}, close: async () => {} }) };\n`;
}

const IGB_TWIN = {
  name: 'igb-twin',
  apiVersion: '^1',
  ids: ['8086:10c9'],
  needsToken: true,
  rotation: 'drain',
  description: 'a second plugin for the 82576',
};

describe('plugin registry', () => {
  let dir = '';
  let registry: PluginRegistry;
  let world: World | null = null;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'vfb-registry-'));
    registry = await PluginRegistry.load({ logger });
  });
  after(async () => {
    await registry.close();
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await world?.cleanup();
    world = null;
  });

  async function host(fixture: { name: string } | { yaml: string }): Promise<World> {
    world = await makeWorld(fixture);
    return world;
  }

  async function writeModule(name: string, source: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, source);
    return file;
  }

  it('loads the built-ins, the generic fallback last', () => {
    assert.deepEqual(
      registry.list().map((l) => l.plugin.manifest.name),
      ['igb', 'intel-fec', 'mlx5', 'generic'],
    );
  });

  it('picks a plugin by the PF’s PCI ID', async () => {
    const cases: [string, string, string][] = [
      ['igb-82576.yaml', '0000:04:00.0', 'igb'],
      ['acc100.yaml', '0000:b1:00.0', 'intel-fec'],
      ['n3000.yaml', '0000:1f:00.0', 'intel-fec'],
      ['connectx5.yaml', '0000:5e:00.1', 'mlx5'],
    ];
    for (const [fixture, address, name] of cases) {
      const w = await host({ name: fixture });
      const selected = await registry.select(w.sim, { address: address as PciAddress, vfs: 1 });
      assert.equal(selected.plugin.manifest.name, name);
      assert.match(selected.reason, /^handles [0-9a-f]{4}:[0-9a-f]{4}$/);
      await w.cleanup();
    }
  });

  it('lets plugin: in broker.yaml win over the PCI ID', async () => {
    const w = await host({ name: 'igb-82576.yaml' });
    const selected = await registry.select(w.sim, {
      address: '0000:04:00.0' as PciAddress,
      plugin: 'generic',
      vfs: 1,
    });
    assert.deepEqual(
      [selected.plugin.manifest.name, selected.reason],
      ['generic', 'plugin: generic in broker.yaml'],
    );
    const err = await rejection(
      registry.select(w.sim, { address: '0000:04:00.0' as PciAddress, plugin: 'igbb', vfs: 1 }),
    );
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.message, 'no plugin named "igbb"; known: igb, intel-fec, mlx5, generic');
  });

  it('falls back to generic for an unclaimed SR-IOV PF that is unbound with vfio-pci loaded', async () => {
    const w = await host({ name: 'qemu-nvme.yaml' });
    const selected = await registry.select(w.sim, { address: '0000:00:04.0' as PciAddress, vfs: 1 });
    assert.deepEqual(
      [selected.plugin.manifest.name, selected.reason],
      ['generic', 'fallback: no plugin handles 1b36:0010, the PF has SR-IOV and is unbound'],
    );
  });

  it('never falls back for a device without SR-IOV, on another driver, or without vfio-pci', async () => {
    const n3000 = await host({ name: 'n3000.yaml' });
    const mgmt = await rejection(
      registry.select(n3000.sim, { address: '0000:1e:00.0' as PciAddress, vfs: 1 }),
    );
    assert.equal(mgmt.code, 'NOT_FOUND');
    assert.equal(
      mgmt.message,
      'no plugin handles PF 0000:1e:00.0 (8086:0b30) and the generic plugin does not apply: it has no SR-IOV capability',
    );
    await n3000.cleanup();

    const nvme = (driver: string, vfio: boolean): string =>
      [
        `drivers: [{ name: nvme, ids: ["1b36:0010"], sriovConfigure: true }${vfio ? ', vfio-pci' : ''}]`,
        'devices:',
        `  - { address: "0000:00:04.0", id: "1b36:0010", class: "010802", ${driver}iommuGroup: 3, sriov: { totalVfs: 2, offset: 1, stride: 1, vfDevice: "0010" } }`,
      ].join('\n');
    const onNvme = await host({ yaml: nvme('driver: nvme, ', true) });
    const taken = await rejection(
      registry.select(onNvme.sim, { address: '0000:00:04.0' as PciAddress, vfs: 1 }),
    );
    assert.equal(
      taken.message,
      'no plugin handles PF 0000:00:04.0 (1b36:0010) and the generic plugin does not apply: it is bound to nvme, and the fallback never takes a PF from its driver',
    );
    assert.equal(
      taken.hint,
      "set plugin: generic for PF 0000:00:04.0 in /etc/vfbroker/broker.yaml to manage it with vfbroker's PF holder",
    );
    await onNvme.cleanup();

    const noVfio = await host({ yaml: nvme('', false) });
    assert.match(
      (await rejection(registry.select(noVfio.sim, { address: '0000:00:04.0' as PciAddress, vfs: 1 })))
        .message,
      /: vfio-pci is not loaded$/,
    );
  });

  it('loads an external plugin by path and picks it by its ID', async () => {
    const withExternal = await PluginRegistry.load({ logger, externalPaths: [PF_STUB] });
    const w = await host({ yaml: PF_STUB_HOST });
    const selected = await withExternal.select(w.sim, { address: '0000:00:05.0' as PciAddress, vfs: 1 });
    assert.equal(selected.plugin.manifest.name, 'pf-stub');
    assert.equal(withExternal.list().at(-1)?.source, PF_STUB);
  });

  it('refuses to guess between two plugins claiming one ID, naming both', async () => {
    const twin = await writeModule('twin.mjs', moduleSource(IGB_TWIN));
    const both = await PluginRegistry.load({ logger, externalPaths: [twin] });
    const w = await host({ name: 'igb-82576.yaml' });
    const err = await rejection(both.select(w.sim, { address: '0000:04:00.0' as PciAddress, vfs: 1 }));
    assert.equal(err.code, 'CONFIG_INVALID');
    assert.equal(
      err.message,
      `PF 0000:04:00.0 (8086:10c9) is claimed by plugin igb (built-in) and plugin igb-twin (${twin})`,
    );
    assert.equal(err.hint, 'set plugin: for PF 0000:04:00.0 in /etc/vfbroker/broker.yaml to choose one');
    const chosen = await both.select(w.sim, {
      address: '0000:04:00.0' as PciAddress,
      plugin: 'igb-twin',
      vfs: 1,
    });
    assert.equal(chosen.plugin.manifest.name, 'igb-twin');
  });

  it('rejects plugins it cannot use, naming each', async () => {
    const load = (file: string) =>
      rejection(PluginRegistry.load({ logger, builtins: false, externalPaths: [file] }));
    const future = await writeModule(
      'future.mjs',
      moduleSource({ ...IGB_TWIN, name: 'future', apiVersion: '^2' }),
    );
    assert.equal(
      (await load(future)).message,
      `plugin future from ${future} needs plugin API ^2, this vfbroker provides 1.0`,
    );

    const muddled = await writeModule(
      'muddled.mjs',
      moduleSource({ ...IGB_TWIN, name: 'muddled', rotation: 'none' }),
    );
    assert.equal(
      (await load(muddled)).message,
      `plugin muddled from ${muddled} has an invalid manifest: rotation: a plugin needs a token exactly when its rotation mode is live or drain`,
    );

    const badId = await writeModule(
      'bad-id.mjs',
      moduleSource({ ...IGB_TWIN, name: 'bad-id', ids: ['8086:10C9'] }),
    );
    assert.match(
      (await load(badId)).message,
      /has an invalid manifest: ids\.0: expected a PCI ID as vendor:device in lower-case hex/,
    );

    const bare = await writeModule('bare.mjs', 'export const manifest = {};\n');
    assert.equal(
      (await load(bare)).message,
      `plugin module ${bare} has no default export with a manifest and create()`,
    );

    const missing = path.join(dir, 'missing.mjs');
    assert.match((await load(missing)).message, new RegExp(`^cannot load plugin module ${missing}: `));

    assert.equal((await load('plugins/x.js')).message, 'plugin path "plugins/x.js" is not absolute');

    const clash = await writeModule('clash.mjs', moduleSource({ ...IGB_TWIN, name: 'igb' }));
    const named = await rejection(PluginRegistry.load({ logger, externalPaths: [clash] }));
    assert.equal(named.message, `two plugins are named igb: built-in and ${clash}`);

    const stuck = await writeModule('stuck.mjs', 'await new Promise(() => {});\nexport default {};\n');
    const slow = await rejection(
      PluginRegistry.load({ logger, builtins: false, externalPaths: [stuck], loadTimeoutMs: 100 }),
    );
    assert.equal(slow.code, 'TIMEOUT');
    assert.equal(slow.message, `plugin module ${stuck} did not load within 100 ms`);
  });
});
