/**
 * The plugin registry: loads the built-in plugins (plugins/<name>/) and external ones (module paths
 * from broker.yaml's `plugins.paths`) through one code path, checks each manifest, and picks the
 * plugin for a PF:
 *
 * 1. `plugin: <name>` in the PF's entry wins, whatever the device;
 * 2. otherwise the one plugin whose manifest lists the PF's `vendor:device`; two plugins listing
 *    it is an error naming both (set `plugin:` to choose);
 * 3. otherwise the generic plugin, but only for a PF that has SR-IOV (sriov_totalvfs > 0) and is
 *    bound to vfio-pci, or is unbound while vfio-pci is loaded. A PF on any other driver is never
 *    taken from it by the fallback: that needs `plugin: generic` written in broker.yaml.
 */
import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { VfbError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Sysfs } from '../sysfs/sysfs.js';
import type { PfConfig, Plugin, PluginManifest, PluginModule } from './contract.js';
import { checkManifest } from './manifest.js';
import { observePf } from './lifecycle/observe.js';
import { VFIO_PCI } from './lifecycle/vfio.js';

/** Built-in plugins in load order; the fallback comes last. */
export const BUILTIN_PLUGINS = ['igb', 'intel-fec', 'mlx5', 'generic'] as const;
export const FALLBACK_PLUGIN = 'generic';
const DEFAULT_LOAD_TIMEOUT_MS = 10_000;

export interface LoadOptions {
  readonly logger: Logger;
  /** Absolute paths of external plugin modules. */
  readonly externalPaths?: readonly string[];
  /** Load the built-ins too (true unless a test wants only its own). */
  readonly builtins?: boolean;
  readonly loadTimeoutMs?: number;
}

export interface LoadedPlugin {
  readonly plugin: Plugin;
  /** "built-in" or the module path, for errors and `vfbroker doctor`. */
  readonly source: string;
}

export interface Selection {
  readonly plugin: Plugin;
  /** Why this plugin, in words: "plugin: igb in broker.yaml", "handles 8086:10c9", "fallback…". */
  readonly reason: string;
}

export class PluginRegistry {
  private constructor(private readonly loaded: readonly LoadedPlugin[]) {}

  static async load(options: LoadOptions): Promise<PluginRegistry> {
    const timeout = options.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
    const sources: { url: URL; source: string }[] = [
      ...(options.builtins === false
        ? []
        : BUILTIN_PLUGINS.map((n) => ({
            url: new URL(`../../plugins/${n}/index.js`, import.meta.url),
            source: 'built-in',
          }))),
      ...(options.externalPaths ?? []).map((p) => ({ url: externalUrl(p), source: p })),
    ];
    const loaded: LoadedPlugin[] = [];
    for (const { url, source } of sources) {
      const plugin = await loadOne(url, source, timeout);
      const clash = loaded.find((l) => l.plugin.manifest.name === plugin.manifest.name);
      if (clash) {
        throw new VfbError(
          'CONFIG_INVALID',
          `two plugins are named ${plugin.manifest.name}: ${clash.source} and ${source}`,
          {
            hint: 'remove one of them from plugins.paths in /etc/vfbroker/broker.yaml',
          },
        );
      }
      loaded.push({ plugin, source });
      options.logger.debug({ plugin: plugin.manifest.name, source }, 'plugin loaded');
    }
    return new PluginRegistry(loaded);
  }

  list(): readonly LoadedPlugin[] {
    return this.loaded;
  }

  get(name: string): Plugin {
    const found = this.loaded.find((l) => l.plugin.manifest.name === name);
    if (found) return found.plugin;
    throw new VfbError(
      'NOT_FOUND',
      `no plugin named ${JSON.stringify(name)}; known: ${this.loaded.map((l) => l.plugin.manifest.name).join(', ')}`,
      {
        hint: 'fix plugin: in /etc/vfbroker/broker.yaml, or add the plugin module to plugins.paths',
      },
    );
  }

  async select(sysfs: Sysfs, pf: PfConfig): Promise<Selection> {
    if (pf.plugin !== undefined)
      return { plugin: this.get(pf.plugin), reason: `plugin: ${pf.plugin} in broker.yaml` };
    const observed = await observePf(sysfs, pf.address);
    const id = observed.deviceId;
    const claimants = this.loaded.filter((l) => l.plugin.manifest.ids.includes(id));
    const [first, second] = claimants;
    if (first && second) {
      throw new VfbError(
        'CONFIG_INVALID',
        `PF ${pf.address} (${id}) is claimed by plugin ${first.plugin.manifest.name} (${first.source}) and plugin ${second.plugin.manifest.name} (${second.source})`,
        { hint: `set plugin: for PF ${pf.address} in /etc/vfbroker/broker.yaml to choose one` },
      );
    }
    if (first) return { plugin: first.plugin, reason: `handles ${id}` };

    const fallback = this.loaded.find((l) => l.plugin.manifest.name === FALLBACK_PLUGIN);
    const hasSriov = (observed.totalVfs ?? 0) > 0;
    const vfioLoaded = (await sysfs.moduleParameter('vfio_pci', 'enable_sriov')) !== null;
    const onVfio = observed.driver === VFIO_PCI || (observed.driver === null && vfioLoaded);
    if (fallback && hasSriov && onVfio) {
      return {
        plugin: fallback.plugin,
        reason: `fallback: no plugin handles ${id}, the PF has SR-IOV and is ${observed.driver ?? 'unbound'}`,
      };
    }
    const why = !hasSriov
      ? 'it has no SR-IOV capability'
      : observed.driver !== null
        ? `it is bound to ${observed.driver}, and the fallback never takes a PF from its driver`
        : 'vfio-pci is not loaded';
    throw new VfbError(
      'NOT_FOUND',
      `no plugin handles PF ${pf.address} (${id}) and the generic plugin does not apply: ${why}`,
      {
        hint: `set plugin: generic for PF ${pf.address} in /etc/vfbroker/broker.yaml to manage it with vfbroker's PF holder`,
      },
    );
  }

  /** Stops every PF driver process the plugins supervise. */
  async close(): Promise<void> {
    await Promise.all(this.loaded.map((l) => l.plugin.close()));
  }
}

function externalUrl(modulePath: string): URL {
  if (!path.isAbsolute(modulePath)) {
    throw new VfbError('CONFIG_INVALID', `plugin path ${JSON.stringify(modulePath)} is not absolute`, {
      hint: 'give plugins.paths in /etc/vfbroker/broker.yaml as absolute paths',
    });
  }
  return pathToFileURL(modulePath);
}

async function loadOne(url: URL, source: string, timeoutMs: number): Promise<Plugin> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new VfbError(
            'TIMEOUT',
            `plugin module ${source === 'built-in' ? url.pathname : source} did not load within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
  });
  let mod: { default?: unknown };
  try {
    mod = await Promise.race([import(url.href) as Promise<{ default?: unknown }>, timeout]);
  } catch (err) {
    if (err instanceof VfbError) throw err;
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new VfbError(
      'CONFIG_INVALID',
      `cannot load plugin module ${source === 'built-in' ? url.pathname : source}: ${why}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
  const candidate = mod.default as Partial<PluginModule> | undefined;
  if (!candidate || typeof candidate !== 'object' || typeof candidate.create !== 'function') {
    throw new VfbError(
      'CONFIG_INVALID',
      `plugin module ${source} has no default export with a manifest and create()`,
      {
        hint: 'export default { manifest, create } (see docs/decisions/0004-plugin-contract.md)',
      },
    );
  }
  const manifest = checkManifest(candidate.manifest, source);
  const plugin = candidate.create();
  // Selection reads the instance's manifest, so it must be the one that was checked.
  if (!sameManifest(plugin.manifest, manifest)) {
    throw new VfbError(
      'CONFIG_INVALID',
      `plugin ${manifest.name} from ${source} created a plugin whose manifest differs from the module's`,
    );
  }
  return plugin;
}

function sameManifest(a: PluginManifest, b: PluginManifest): boolean {
  return (
    a.name === b.name &&
    a.apiVersion === b.apiVersion &&
    a.ids.join() === b.ids.join() &&
    a.needsToken === b.needsToken &&
    a.rotation === b.rotation &&
    a.description === b.description
  );
}
