/**
 * What the D-Bus integration tests share: a broker stand-in with fixed answers, an event source the
 * test can fire, and a bus with that broker exported on it.
 */
import type {
  BrokerApi,
  BrokerEvents,
  BrokerStatus,
  Caller,
  DeviceVerdict,
  PfSummary,
  PrepareDevice,
  RotationState,
} from '../../../src/broker/api.js';
import {
  exportBroker,
  type BrokerEventSource,
  type ExportedBroker,
  type ExportOptions,
} from '../../../src/broker/dbus/service.js';
import { KernelError, VfbError } from '../../../src/errors.js';
import { connectBus, type BusConnection } from '../../../src/dbus/connection.js';
import type { PciAddress } from '../../../src/pci/address.js';
import { BrokerClient } from '../../../src/dbus/client.js';
import { captureLogs, type CapturedLogs } from '../../support/log-capture.js';
import { startDbusDaemon, type TestBus } from '../../support/dbus-daemon.js';

export const TOKEN = '6f1c2a4e-8d3b-4f7a-9c1e-2b5d7e9f0a13';
export const GUEST = '0d5a8a41-6f5c-4c7e-8a9b-3e2f1d0c9b8a';
export const VF = '0000:3b:02.1' as PciAddress;
export const FORBIDDEN_VF = '0000:3b:02.2' as PciAddress;
export const PF = '0000:3b:00.0' as PciAddress;
/** rotate() on this PF throws a plain Error, as a bug would. */
export const BUGGY_PF = '0000:3b:00.1' as PciAddress;
/** setNumVfs() on this PF waits until the test calls release(). */
export const HANGING_PF = '0000:3b:00.2' as PciAddress;
export const BUG_TEXT = 'bug detail that must stay in the broker';

export const PFS: PfSummary[] = [
  {
    address: PF,
    plugin: 'igb',
    state: 'up',
    numVfs: 7,
    needsToken: true,
    generation: 3,
    rotationMode: 'drain',
    leases: 1,
    activeSince: '2026-11-01T08:00:00.000Z',
    pendingGeneration: 4,
    rotationStep: 'draining',
    waitingFor: 'vdu-1',
    drainDeadline: '2026-11-24T12:10:00.000Z',
  },
  {
    address: '0000:5e:00.0' as PciAddress,
    plugin: 'mlx5',
    state: 'degraded',
    numVfs: 0,
    needsToken: false,
    generation: 0,
    rotationMode: 'none',
    leases: 0,
    activeSince: '',
    pendingGeneration: 0,
    rotationStep: '',
    waitingFor: '',
    drainDeadline: '',
  },
];

/** Answers from fixed data, plus one answer made from the caller so tests can see who called. */
export class FixedBroker implements BrokerApi {
  private waiting: (() => void)[] = [];
  private onHang: (() => void) | undefined;

  prepareGuest(
    _caller: Caller,
    guestUuid: string,
    guestName: string,
    devices: readonly PrepareDevice[],
  ): Promise<DeviceVerdict[]> {
    return Promise.resolve(
      devices.map(({ address, presentedToken }) => {
        const verdict =
          presentedToken === null ? 'token-missing' : presentedToken === TOKEN ? 'ok' : 'token-stale';
        return { address, verdict, message: `${guestName} (${guestUuid}) ${address}: ${verdict}` };
      }),
    );
  }

  guestStarted(_caller: Caller, guestUuid: string): Promise<void> {
    if (guestUuid !== GUEST)
      return Promise.reject(new VfbError('NOT_FOUND', `no prepared guest ${guestUuid}`));
    return Promise.resolve();
  }

  releaseGuest(): Promise<void> {
    return Promise.resolve();
  }

  getToken(_caller: Caller, address: PciAddress): Promise<string> {
    if (address === VF) return Promise.resolve(TOKEN);
    return Promise.reject(new VfbError('DENIED', `the policy grants this caller no token for ${address}`));
  }

  rotate(_caller: Caller, pf: PciAddress): Promise<RotationState> {
    if (pf === BUGGY_PF) return Promise.reject(new Error(BUG_TEXT));
    return Promise.resolve('draining');
  }

  listPfs(): Promise<PfSummary[]> {
    return Promise.resolve(PFS);
  }

  /** hostId carries the caller as the broker saw it. */
  status(caller: Caller): Promise<BrokerStatus> {
    return Promise.resolve({
      version: '0.0.0-test',
      hostId: JSON.stringify(caller),
      pfs: PFS.length,
      leases: 1,
      storeReachable: true,
      uptimeSeconds: 42,
    });
  }

  setNumVfs(_caller: Caller, pf: PciAddress, count: number): Promise<void> {
    if (pf === HANGING_PF) {
      return new Promise((resolve) => {
        this.waiting.push(resolve);
        this.onHang?.();
      });
    }
    if (count > 7) {
      return Promise.reject(
        new KernelError('ERANGE', `/sys/bus/pci/devices/${pf}/sriov_numvfs`, 'more VFs than the PF offers'),
      );
    }
    return Promise.resolve();
  }

  pfUp(_caller: Caller, pf: PciAddress, dryRun: boolean): Promise<string> {
    return Promise.resolve(`plan for ${pf}${dryRun ? ' (dry run)' : ''}`);
  }

  pfDown(): Promise<void> {
    return Promise.resolve();
  }

  pfStatus(_caller: Caller, pf: PciAddress): Promise<string> {
    return Promise.resolve(JSON.stringify({ pf, state: 'up' }));
  }

  /** Resolves once `n` setNumVfs calls are hanging in the broker (not merely on their way). */
  whenHanging(n: number): Promise<void> {
    return new Promise((resolve) => {
      this.onHang = () => {
        if (this.waiting.length >= n) resolve();
      };
      this.onHang();
    });
  }

  /** Lets every hanging setNumVfs finish. */
  release(): void {
    for (const resolve of this.waiting.splice(0)) resolve();
  }
}

export class TestEvents implements BrokerEventSource {
  private readonly listeners = new Set<BrokerEvents>();

  subscribe(listener: BrokerEvents): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  fire(fn: (l: BrokerEvents) => void): void {
    for (const l of this.listeners) fn(l);
  }

  get subscribers(): number {
    return this.listeners.size;
  }
}

export interface World {
  readonly bus: TestBus;
  readonly broker: FixedBroker;
  readonly events: TestEvents;
  readonly logs: CapturedLogs;
  readonly serverConnection: BusConnection;
  readonly exported: ExportedBroker;
  client(options?: { callTimeoutMs?: number }): Promise<BrokerClient>;
  stop(): Promise<void>;
}

/** A private bus with FixedBroker exported on it; stop() tears all of it down. */
export async function startWorld(options: Partial<Omit<ExportOptions, 'logger'>> = {}): Promise<World> {
  const bus = await startDbusDaemon();
  const logs = captureLogs('debug');
  const broker = new FixedBroker();
  const events = new TestEvents();
  const serverConnection = await connectBus({ address: bus.address });
  const exported = await exportBroker(serverConnection, broker, events, { logger: logs.logger, ...options });
  const clients: BrokerClient[] = [];
  return {
    bus,
    broker,
    events,
    logs,
    serverConnection,
    exported,
    async client(clientOptions = {}) {
      const c = await BrokerClient.connect({ address: bus.address, ...clientOptions });
      clients.push(c);
      return c;
    },
    async stop() {
      broker.release();
      for (const c of clients) c.close();
      await exported.close();
      serverConnection.close();
      await bus.stop();
    },
  };
}

/** The VfbError a promise rejects with. */
export async function rejection(p: Promise<unknown>): Promise<VfbError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof VfbError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}
