/**
 * What `vfbroker demo` did, step by step: the record behind both the transcript and `--json`. It
 * holds addresses, verdicts and token generations, never a token.
 */
import type { PfSummary, Verdict } from '../broker/api.js';
import type { PciAddress } from '../pci/address.js';
import type { PolicyFlavour } from './private-bus.js';

export interface SetupReport {
  readonly directory: string;
  readonly fixture: string;
  readonly policy: string;
  readonly bus: { readonly address: string; readonly policy: PolicyFlavour; readonly uid: number };
  readonly broker: { readonly pid: number; readonly command: readonly string[] };
}

export interface GuestReport {
  readonly name: string;
  readonly uuid: string;
  readonly story: string;
  readonly definition: string;
  readonly vfs: readonly {
    readonly address: PciAddress;
    readonly pf: PciAddress;
    readonly card: string;
    readonly index: number;
    /** Which token the definition carries for it: the PF's active one, another one, or none. */
    readonly token: 'active' | 'other' | 'none';
  }[];
}

export interface HookStep {
  readonly kind: 'hook';
  readonly guest: string;
  readonly uuid: string;
  /** The hook's argv as libvirt passes it: name, op, subop, extra. */
  readonly args: readonly string[];
  readonly exitCode: number;
  /** prepare: whether libvirt goes on with the start. Other ops never stop anything. */
  readonly outcome: 'accepted' | 'refused' | 'notified';
  /** ok when accepted; otherwise the broker's verdict on the first refused VF. */
  readonly verdict: Verdict | null;
  /** Per refused VF, as the broker's GuestRefused signal reported it. */
  readonly refusals: readonly { readonly vf: PciAddress; readonly verdict: Verdict }[];
  /** What `virsh start` would print for a refused start. */
  readonly libvirtError: readonly string[] | null;
}

export interface StatusStep {
  readonly kind: 'token-status';
  readonly command: readonly string[];
  /** `vfbroker token status` as printed (human mode) … */
  readonly output: readonly string[];
  /** … and as its --json gives it. */
  readonly pfs: readonly PfSummary[] | null;
}

export interface RotateStep {
  readonly kind: 'rotate';
  readonly pf: PciAddress;
  readonly mode: PfSummary['rotationMode'];
  readonly state: string;
  readonly generation: { readonly before: number; readonly after: number };
}

export interface SyncStep {
  readonly kind: 'sync';
  readonly guest: string;
  readonly pf: PciAddress;
  readonly generation: number;
}

export type Step = HookStep | StatusStep | RotateStep | SyncStep;

export interface KeptReport {
  readonly directory: string;
  readonly busAddress: string;
  readonly tryCommand: string;
  readonly hookCommand: string;
  readonly stopCommand: string;
}

export interface DemoReport {
  readonly setup: SetupReport;
  readonly pfs: readonly PfSummary[];
  readonly guests: readonly GuestReport[];
  readonly steps: readonly Step[];
  /** Null when everything was stopped and removed. */
  readonly kept: KeptReport | null;
}
