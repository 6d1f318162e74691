/**
 * A small broker for hook tests, behind the hook's client interface: it knows the current token of
 * each PF the test host drives through vfio-pci, answers PrepareGuest the way the broker's verdict
 * rules do (ok / token-missing / token-stale / denied), keeps leases, and can be unreachable or
 * never answer. Tests read its state (leases, running guests, releases), not its calls.
 */
import type { DeviceVerdict, PrepareDevice, Verdict } from '../../../src/broker/api.js';
import { VfbError } from '../../../src/errors.js';
import type { ConnectBroker, HookBrokerClient } from '../../../src/hooks/broker-port.js';
import { CURRENT_TOKEN } from '../libvirt/domain-fixtures.js';

export const AF_TOKEN = 'a0b1c2d3-e4f5-4a6b-8c7d-8e9fa0b1c2d3';

/** PF of each VF prefix on the simulated host, and that PF's current token. */
const PF_TOKENS: readonly [string, string][] = [
  ['0000:3b:0', CURRENT_TOKEN],
  ['0000:af:0', AF_TOKEN],
];

/** up: answers; unreachable: connecting fails; silent: connecting never ends; late: connects after `lateMs`. */
export type BrokerMode = 'up' | 'unreachable' | 'silent' | 'late';

export class BrokerDouble {
  readonly leases = new Map<string, string[]>();
  readonly running = new Set<string>();
  readonly released = new Map<string, string>();
  /** VF addresses no guest is granted. */
  readonly denied = new Set<string>();
  mode: BrokerMode = 'up';
  lateMs = 0;
  /** Connections handed out and not closed yet. */
  openConnections = 0;
  /** Settles after the last `late` connection has been handed out and its receiver has reacted. */
  lateConnection: Promise<void> = Promise.resolve();

  readonly connect: ConnectBroker = () => {
    if (this.mode === 'unreachable') {
      return Promise.reject(
        new VfbError(
          'UNAVAILABLE',
          'cannot connect to the system bus: connect ENOENT /run/dbus/system_bus_socket',
        ),
      );
    }
    if (this.mode === 'silent') return new Promise<never>(() => undefined);
    if (this.mode === 'late') {
      const client = new Promise<HookBrokerClient>((resolve) =>
        setTimeout(() => resolve(this.client()), this.lateMs),
      );
      // Settles a macrotask after the hand-over, once the hook has reacted to the connection.
      this.lateConnection = client.then(() => new Promise((resolve) => setImmediate(resolve)));
      return client;
    }
    return Promise.resolve(this.client());
  };

  private client(): HookBrokerClient {
    this.openConnections++;
    return {
      prepareGuest: (uuid, name, devices) => Promise.resolve(this.prepare(uuid, name, devices)),
      guestStarted: (uuid) => {
        this.running.add(uuid);
        return Promise.resolve();
      },
      releaseGuest: (uuid, reason) => {
        this.leases.delete(uuid);
        this.running.delete(uuid);
        this.released.set(uuid, reason);
        return Promise.resolve();
      },
      close: () => {
        this.openConnections--;
      },
    };
  }

  private prepare(uuid: string, name: string, devices: readonly PrepareDevice[]): DeviceVerdict[] {
    const verdicts = devices.map((d): DeviceVerdict => {
      const current = PF_TOKENS.find(([prefix]) => d.address.startsWith(prefix))?.[1];
      const [verdict, message] = this.judge(d, current, name);
      return { address: d.address, verdict, message };
    });
    if (verdicts.every((v) => v.verdict === 'ok'))
      this.leases.set(
        uuid,
        devices.map((d) => d.address),
      );
    return verdicts;
  }

  private judge(d: PrepareDevice, current: string | undefined, guest: string): [Verdict, string] {
    if (current === undefined)
      return ['unknown-vf', `VF ${d.address} is not managed by vfbroker; run \`vfbroker pf status\``];
    if (this.denied.has(d.address)) {
      return [
        'denied',
        `VF ${d.address} is not granted to guest ${guest}; add a grant to /etc/vfbroker/policy.yaml`,
      ];
    }
    if (d.presentedToken === null) {
      return [
        'token-missing',
        `VF ${d.address} needs a VF token the definition lacks; run \`vfbroker guest sync ${guest}\``,
      ];
    }
    if (d.presentedToken !== current) {
      return [
        'token-stale',
        `VF ${d.address} presents a rotated token; run \`vfbroker guest sync ${guest}\``,
      ];
    }
    return ['ok', ''];
  }
}
