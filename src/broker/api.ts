/**
 * The broker's API as the rest of the code sees it, independent of D-Bus. The D-Bus service
 * (src/broker/dbus/) turns bus messages into these typed calls, adding the caller's identity from
 * the bus; the broker core implements them. Nothing returned here carries a token except getToken.
 */
import type { PciAddress } from '../pci/address.js';

/** What PrepareGuest says about one device (DESIGN.md §3). Anything but ok/no-token-needed refuses the start. */
export const VERDICTS = [
  'ok',
  'no-token-needed',
  'denied',
  'token-missing',
  'token-stale',
  'unknown-vf',
  /** The VF's PF is not up: its PF driver died, or it never came up. */
  'pf-not-ready',
  'rotating',
  'busy',
] as const;
export type Verdict = (typeof VERDICTS)[number];

export function isAcceptingVerdict(v: Verdict): boolean {
  return v === 'ok' || v === 'no-token-needed';
}

/** Who is calling, as the bus vouches for it (GetConnectionCredentials + /proc/PID/cgroup). */
export interface Caller {
  readonly uid: number;
  readonly pid: number;
  /** The gids of the caller's process (from /proc/PID/status), empty when unknown. */
  readonly gids: readonly number[];
  /** The systemd unit the caller runs in, from /proc/PID/cgroup; null outside a unit. */
  readonly unit: string | null;
  /** The caller's unique bus name, for logs. */
  readonly busName: string;
}

export interface PrepareDevice {
  readonly address: PciAddress;
  /** The vf-token found in the guest's definition, or null when it carries none. */
  readonly presentedToken: string | null;
}

export interface DeviceVerdict {
  readonly address: PciAddress;
  readonly verdict: Verdict;
  /** One line naming the VF, the reason and the command that fixes it. Never a token. */
  readonly message: string;
}

export type PfState = 'up' | 'down' | 'degraded' | 'rotating';

export interface PfSummary {
  readonly address: PciAddress;
  readonly plugin: string;
  readonly state: PfState;
  readonly numVfs: number;
  readonly needsToken: boolean;
  /** Active token generation, 0 when the PF has none (no token needed, or not yet up). */
  readonly generation: number;
  readonly rotationMode: 'live' | 'drain' | 'none';
  readonly leases: number;
  /** ISO 8601 creation time of the active generation; "" when the PF has no token. */
  readonly activeSince: string;
  /** The generation a rotation is applying, 0 when none is under way. */
  readonly pendingGeneration: number;
  /** The journaled step of a rotation under way ("draining", "applying"…), "" when none. */
  readonly rotationStep: string;
  /** Names of the guests a drain rotation waits for, comma-separated; "" when none. */
  readonly waitingFor: string;
  /** ISO 8601 time a drain rotation gives up; "" when none. */
  readonly drainDeadline: string;
}

export interface BrokerStatus {
  readonly version: string;
  readonly hostId: string;
  readonly pfs: number;
  readonly leases: number;
  readonly storeReachable: boolean;
  readonly uptimeSeconds: number;
}

export type RotationState = 'done' | 'draining' | 'rolled-back' | 'cancelled';

export interface BrokerEvents {
  tokenRotated(pf: PciAddress, generation: number): void;
  guestRefused(guestUuid: string, address: PciAddress, verdict: Verdict): void;
}

/** Every method may reject with a VfbError; the D-Bus layer maps its code to org.vfbroker.Error.*. */
export interface BrokerApi {
  prepareGuest(
    caller: Caller,
    guestUuid: string,
    guestName: string,
    devices: readonly PrepareDevice[],
  ): Promise<DeviceVerdict[]>;
  guestStarted(caller: Caller, guestUuid: string): Promise<void>;
  releaseGuest(caller: Caller, guestUuid: string, reason: string): Promise<void>;
  getToken(caller: Caller, address: PciAddress): Promise<string>;
  rotate(caller: Caller, pf: PciAddress): Promise<RotationState>;
  listPfs(caller: Caller): Promise<PfSummary[]>;
  status(caller: Caller): Promise<BrokerStatus>;
  setNumVfs(caller: Caller, pf: PciAddress, count: number): Promise<void>;
  /** Brings a PF up with its token; with dryRun, only says what would change. Resolves to the plan, as text. */
  pfUp(caller: Caller, pf: PciAddress, dryRun: boolean): Promise<string>;
  /** Stops the PF driver and removes the VFs; with release, also gives the PF back to the host. */
  pfDown(caller: Caller, pf: PciAddress, release: boolean): Promise<void>;
  /** Each life-cycle step of a PF and whether it is done, as a JSON document (PfStatus, src/plugins/status.ts). */
  pfStatus(caller: Caller, pf: PciAddress): Promise<string>;
}
