/**
 * The verdict on one device of a guest that is about to start, as a pure function of what the
 * broker knows. The order of the checks is part of the contract: a guest that is not authorised
 * learns nothing about tokens, and token checks come last because they are the ones `guest sync`
 * fixes.
 *
 * Every message is one line that names the VF, the reason and the command that fixes it — libvirt
 * quotes it to the user in its error. Messages never contain a token.
 */
import { isUuid } from '../uuid.js';
import type { Verdict } from './api.js';
import type { PciAddress } from '../pci/address.js';

const UUID_LENGTH = 36;

export interface GuestRef {
  readonly uuid: string;
  readonly name: string;
}

/** What the broker found out about one requested device before deciding. */
export type DeviceFacts =
  | { readonly kind: 'unmanaged'; readonly address: PciAddress }
  | {
      readonly kind: 'managed';
      readonly address: PciAddress;
      readonly pf: PciAddress;
      readonly index: number;
      /** From the PF's plugin: false for PFs whose VFs carry no token (ConnectX-5 on mlx5_core). */
      readonly needsToken: boolean;
      readonly policy: { readonly allowed: boolean; readonly reason: string };
      /** Why the PF cannot serve its VFs now (its driver died, it never came up); null when it can. */
      readonly pfProblem: string | null;
      readonly rotating: boolean;
      /** The guest holding this VF, when it is not the guest asking. */
      readonly heldBy: GuestRef | null;
      readonly activeToken: string | null;
      readonly activeGeneration: number;
      readonly presentedToken: string | null;
    };

export interface DeviceDecision {
  readonly verdict: Verdict;
  readonly message: string;
}

export function decideDevice(guest: GuestRef, facts: DeviceFacts): DeviceDecision {
  const vf = facts.address;
  if (facts.kind === 'unmanaged') {
    return {
      verdict: 'unknown-vf',
      message: `${vf} is not a VF of a PF vfbroker manages; add its PF to /etc/vfbroker/broker.yaml or remove the hostdev from ${guest.name}`,
    };
  }
  const where = `VF ${vf} (PF ${facts.pf} VF ${facts.index})`;
  if (!facts.needsToken) {
    return {
      verdict: 'no-token-needed',
      message: `${where}: its PF is driven by a kernel driver; no VF token involved`,
    };
  }
  if (!facts.policy.allowed) {
    return {
      verdict: 'denied',
      message: `${where} is not granted to guest ${guest.name} (${facts.policy.reason}); grant it in /etc/vfbroker/policy.yaml, check with: vfbroker policy check --guest ${guest.uuid} --vf ${vf}`,
    };
  }
  if (facts.pfProblem !== null) {
    return {
      verdict: 'pf-not-ready',
      message: `${where}: its PF is not ready (${facts.pfProblem}); see: vfbroker pf status ${facts.pf}`,
    };
  }
  if (facts.rotating) {
    return {
      verdict: 'rotating',
      message: `${where}: the PF's token is being rotated; retry when it completes (vfbroker token status ${facts.pf})`,
    };
  }
  if (facts.heldBy) {
    return {
      verdict: 'busy',
      message: `${where} is in use by guest ${facts.heldBy.name} (${facts.heldBy.uuid}); stop that guest or give ${guest.name} another VF`,
    };
  }
  if (facts.activeToken === null) {
    return {
      verdict: 'unknown-vf',
      message: `${where}: the PF has no token yet; bring it up with: vfbroker pf up ${facts.pf}`,
    };
  }
  if (facts.presentedToken === null) {
    return {
      verdict: 'token-missing',
      message: `${where}: the definition of ${guest.name} carries no vf-token; run: vfbroker guest sync ${guest.name}`,
    };
  }
  if (!sameToken(facts.presentedToken, facts.activeToken)) {
    return {
      verdict: 'token-stale',
      message: `${where}: the definition of ${guest.name} carries an outdated vf-token (active generation ${facts.activeGeneration}); run: vfbroker guest sync ${guest.name}`,
    };
  }
  return { verdict: 'ok', message: `${where} ready for guest ${guest.name}` };
}

/**
 * Constant-time comparison of two UUIDs, case-insensitively: always all 36 characters, no early exit,
 * no branch on what differs. Not crypto.timingSafeEqual: it needs both as bytes, and making the two
 * buffers for every device of every PrepareGuest was a tenth of the broker's CPU under load.
 */
export function sameToken(presented: string, active: string): boolean {
  if (!isUuid(presented) || !isUuid(active)) return false;
  // Both are hex digits with dashes in the same places: OR-ing 0x20 folds A-F onto a-f and leaves
  // digits and dashes as they are.
  let diff = 0;
  for (let i = 0; i < UUID_LENGTH; i++) {
    diff |= (presented.charCodeAt(i) | 0x20) ^ (active.charCodeAt(i) | 0x20);
  }
  return diff === 0;
}
