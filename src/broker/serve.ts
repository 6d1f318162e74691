/**
 * `vfbroker serve`: the composition root. Start-up runs in a fixed order — config, state
 * directories, store, plugins and PFs, then the bus name last, so no call arrives before the
 * broker can answer it — and shutdown runs in reverse within a deadline (STYLE.md habit 6).
 * SIGHUP reloads the policy atomically: a bad policy is refused with a log line and the old one stays.
 */
import { join } from 'node:path';
import { Broker } from './broker.js';
import { bringUp, bringUpOne, planCheck, selectPlugins, type BringUpDeps } from './bring-up.js';
import { exportBroker, type ExportedBroker } from './dbus/service.js';
import { EventHub } from './events.js';
import { trimWhenIdle } from './idle-trim.js';
import { LeaseTable } from './leases.js';
import { PfHealth } from './pf-health.js';
import { decideGuest } from './policy/decide.js';
import { disablePretenuring } from './pretenuring.js';
import { createRotator } from './rotation/index.js';
import { openStore } from './store/open.js';
import { TokenCache } from './store/token-cache.js';
import { loadBrokerConfig, type BrokerConfig } from '../config/broker-config.js';
import { loadPolicyConfig, type Policy } from '../config/policy-config.js';
import { connectBus, type BusConnection } from '../dbus/connection.js';
import { libvirtDefinitionSync } from '../libvirt/rotation-sync.js';
import { RunningGuests } from '../libvirt/running-guests.js';
import { Virsh } from '../libvirt/virsh.js';
import { createLogger, type Logger } from '../log.js';
import { PluginRegistry } from '../plugins/registry.js';
import { createNodeRunner } from '../process/node-runner.js';
import { ensurePrivateDirectory } from '../private-files.js';
import { openSysfs } from '../sysfs/open.js';

export interface ServeOptions {
  readonly configPath: string;
  readonly policyPath: string;
  /** Where /etc/passwd and /etc/group are for the policy's user and group names. */
  readonly accountsRoot?: string;
  /** Replaces the logger built from broker.yaml (tests capture it). */
  readonly logger?: Logger;
}

export interface RunningBroker {
  readonly config: BrokerConfig;
  readonly logger: Logger;
  /** Re-reads policy.yaml; resolves false (and keeps the old policy) when the new one is invalid. */
  reloadPolicy(): Promise<boolean>;
  /** Stops in reverse order of start; idempotent. */
  stop(): Promise<void>;
  /**
   * Resolves when the broker can no longer serve (its bus connection is gone: the dbus-daemon
   * restarted). It does not try to carry on: systemd restarts it (Restart=on-failure), and the
   * fresh start takes the name back and re-reads its leases.
   */
  readonly lost: Promise<string>;
}

/** Pending leases whose guest never reported `started` are dropped after this. */
const PENDING_LEASE_TTL_MS = 10 * 60_000;
const STOP_DEADLINE_MS = 20_000;

export async function startBroker(options: ServeOptions): Promise<RunningBroker> {
  const config = await loadBrokerConfig(options.configPath);
  const logger = options.logger ?? createLogger({ level: config.log.level });
  const loadPolicy = (): Promise<Policy> =>
    loadPolicyConfig(
      options.policyPath,
      options.accountsRoot === undefined ? {} : { accountsRoot: options.accountsRoot },
    );
  let policy = await loadPolicy();

  await ensurePrivateDirectory(config.stateDirectory, 'state directory');
  await ensurePrivateDirectory(config.runtimeDirectory, 'runtime directory');
  const closers: Array<[string, () => Promise<void>]> = [];
  const stop = async (): Promise<void> => {
    for (const [what, close] of closers.splice(0).reverse()) {
      await close().catch((err: unknown) => logger.error({ err, what }, 'error while stopping'));
    }
  };

  try {
    const store = await openStore(config, logger);
    closers.push(['store', () => store.close()]);
    const tokens = new TokenCache(store);
    const sysfs = await openSysfs(config.sysfs);
    const registry = await PluginRegistry.load({ logger, externalPaths: config.plugins.paths });
    closers.push(['plugins', () => registry.close()]);
    const context = {
      sysfs,
      runner: createNodeRunner({ logger }),
      logger,
      runtimeDirectory: config.runtimeDirectory,
    };
    const deps: BringUpDeps = {
      registry,
      context,
      store,
      tokens,
      logger,
      driverctlDirectory: config.driverctl.directory,
    };
    const pfs = await selectPlugins(config.pfs, deps);
    const leases = await LeaseTable.open({
      file: join(config.stateDirectory, 'leases.json'),
      pendingTtlMs: PENDING_LEASE_TTL_MS,
      logger,
    });
    await reconcileLeases(leases, new Virsh(context.runner), logger);
    const events = new EventHub(logger);
    const definitionSync = libvirtDefinitionSync({
      virsh: new Virsh(context.runner),
      locate: pfs.locate,
      activeToken: async (pf) => (await tokens.active(pf)).token,
      authorised: (guest, vf) => decideGuest(policy, guest, vf, pfs.locate).allowed,
      logger,
    });
    const rotator = createRotator({
      store,
      tokens,
      leases,
      pfs,
      pluginContext: context,
      journalDirectory: join(config.stateDirectory, 'rotation'),
      events,
      definitionSync,
      logger,
    });
    closers.push(['rotation', () => rotator.close()]);
    await bringUp(pfs, deps);
    await rotator.recover();
    const health = new PfHealth({ ...deps, pfs, leases, intervalMs: config.health.checkIntervalMs });
    health.start();
    closers.push(['PF health checks', () => health.close()]);

    const broker = new Broker({
      hostId: config.hostId,
      pfs,
      store,
      tokens,
      leases,
      policy: () => policy,
      rotator,
      context,
      planCheck: (pf) => planCheck(pf, deps),
      bringUp: (pf) => bringUpOne(pfs, pf, deps),
      events,
      runningGuests: new RunningGuests({ directory: config.libvirt.runDirectory, logger }),
      logger,
    });
    const connection: BusConnection = await connectBus(
      config.dbus.busAddress === null ? {} : { address: config.dbus.busAddress },
    );
    let stopping = false;
    closers.push([
      'bus connection',
      () => {
        stopping = true;
        connection.close();
        return Promise.resolve();
      },
    ]);
    const lost = new Promise<string>((resolve) => {
      connection.onClose(() => {
        if (!stopping) resolve('the bus connection was lost');
      });
    });
    const exported: ExportedBroker = await exportBroker(connection, broker, events, { logger });
    closers.push(['bus name', () => exported.close()]);
    logger.info(
      {
        pfs: pfs.all().map((p) => ({ pf: p.entry.address, plugin: p.plugin.manifest.name, state: p.state })),
      },
      'broker ready',
    );

    return {
      config,
      logger,
      async reloadPolicy() {
        try {
          policy = await loadPolicy();
          logger.info({ file: options.policyPath, rules: policy.rules.length }, 'policy reloaded');
          return true;
        } catch (err) {
          logger.error(
            { err, file: options.policyPath },
            'new policy refused; the previous one stays in force',
          );
          return false;
        }
      },
      stop,
      lost,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Guests that stopped while the broker was down never released their VFs: ask libvirt which guests
 * run, and drop the others' leases, so their VFs are not `busy` and drains do not wait for them.
 * Without libvirt (a DPDK-only host) there is nothing to ask.
 */
async function reconcileLeases(leases: LeaseTable, virsh: Virsh, logger: Logger): Promise<void> {
  if (leases.all().length === 0) return;
  try {
    const dropped = await leases.reconcile(await virsh.runningUuids());
    if (dropped.length > 0)
      logger.info({ guests: dropped }, 'released the VFs of guests that stopped while the broker was down');
  } catch (err) {
    logger.warn({ err }, 'cannot ask libvirt which guests run; leases are kept as they are');
  }
}

/**
 * Runs the broker until SIGTERM or SIGINT (resolves 0) or until it loses the bus (resolves 1, so
 * systemd restarts it); SIGHUP reloads the policy. A stop that overruns its deadline exits the
 * process anyway: systemd would kill it later, less politely.
 */
export async function serveUntilSignalled(options: ServeOptions): Promise<number> {
  disablePretenuring();
  const running = await startBroker(options);
  const trim = trimWhenIdle(running.logger);
  return new Promise<number>((resolve) => {
    const onHup = (): void => void running.reloadPolicy();
    const stop = (code: number): void => {
      trim.stop();
      process.off('SIGHUP', onHup);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      // A referenced timer also keeps the event loop alive while the stop runs: with nothing else
      // pending (the bus is gone), Node would otherwise end the process mid-stop with status 13.
      const deadline = setTimeout(() => process.exit(1), STOP_DEADLINE_MS);
      void running.stop().then(() => {
        clearTimeout(deadline);
        resolve(code);
      });
    };
    const onTerm = (): void => stop(0);
    process.on('SIGHUP', onHup);
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onTerm);
    void running.lost.then((why) => {
      running.logger.error({ why }, 'cannot serve any more; stopping so that systemd restarts the broker');
      stop(1);
    });
  });
}
