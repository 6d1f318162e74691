/**
 * What the checks look at, gathered once before any of them runs: broker.yaml, the broker's view
 * (one Status and one ListPfs call), the kernel's release and log, the guest's definition. The
 * checks then only read this and sysfs, so each is a small function of the same context.
 */
import type { BrokerStatus, PfSummary } from '../broker/api.js';
import type { BrokerConfig, PfConfig } from '../config/broker-config.js';
import { toVfbError, type VfbError } from '../errors.js';
import type { PciAddress } from '../pci/address.js';
import type { DoctorEnvironment, BrokerQuery, KernelLog } from './environment.js';
import { readGuest, type GuestView } from './guest.js';
import { parseVersion, type Version } from './version.js';

/** What to examine: the configured PFs, one device, or one guest's devices and definition. */
export type DoctorTarget =
  | { readonly kind: 'host' }
  | { readonly kind: 'vf'; readonly address: PciAddress }
  | { readonly kind: 'guest'; readonly name: string };

export type BrokerView =
  | { readonly reachable: true; readonly status: BrokerStatus; readonly pfs: readonly PfSummary[] }
  | { readonly reachable: false; readonly error: VfbError };

export type GuestOutcome = { readonly name: string } & (
  { readonly view: GuestView } | { readonly error: VfbError }
);

export interface KernelFacts {
  /** `uname -r` */
  readonly release: string;
  readonly version: Version | null;
  /** /dev/vfio/devices exists. */
  readonly cdev: boolean;
}

export interface DoctorContext {
  readonly env: DoctorEnvironment;
  readonly target: DoctorTarget;
  readonly configPath: string;
  /** null when broker.yaml could not be read (the config check says why). */
  readonly config: BrokerConfig | null;
  readonly broker: BrokerView;
  readonly kernel: KernelFacts;
  readonly kernelLog: KernelLog;
  /** null unless the target is a guest. */
  readonly guest: GuestOutcome | null;
}

export async function gatherContext(env: DoctorEnvironment, target: DoctorTarget): Promise<DoctorContext> {
  const [broker, cdev, kernelLog, guest] = await Promise.all([
    queryBroker(env),
    env.vfioCdevPresent(),
    env.kernelLog(),
    target.kind === 'guest' ? loadGuest(env, target.name) : null,
  ]);
  return {
    env,
    target,
    configPath: env.config.path,
    config: 'config' in env.config ? env.config.config : null,
    broker,
    kernel: { release: env.kernelRelease, version: parseVersion(env.kernelRelease), cdev },
    kernelLog,
    guest,
  };
}

/** The broker's summary, or why it could not be had: an unreachable broker is a finding, not an error. */
async function queryBroker(env: DoctorEnvironment): Promise<BrokerView> {
  let client: BrokerQuery | undefined;
  try {
    client = await env.connectBroker();
    const [status, pfs] = await Promise.all([client.status(), client.listPfs()]);
    return { reachable: true, status, pfs };
  } catch (err) {
    return { reachable: false, error: toVfbError(err) };
  } finally {
    client?.close();
  }
}

async function loadGuest(env: DoctorEnvironment, name: string): Promise<GuestOutcome> {
  try {
    return { name, view: readGuest(await env.guestDefinition(name), name) };
  } catch (err) {
    return { name, error: toVfbError(err) };
  }
}

/** The broker's entry for a PF, undefined when the broker is unreachable or does not manage it. */
export function brokerPf(ctx: DoctorContext, pf: PciAddress): PfSummary | undefined {
  return ctx.broker.reachable ? ctx.broker.pfs.find((p) => p.address === pf) : undefined;
}

export function configuredPf(ctx: DoctorContext, pf: PciAddress): PfConfig | undefined {
  return ctx.config?.pfs.find((p) => p.address === pf);
}
