/**
 * One finding of `vfbroker doctor`: what was found, why it matters for the VF token, and the exact
 * command or config change that fixes it. Findings are plain data, so the same list renders as text
 * for people and as JSON for scripts (render.ts documents the JSON schema).
 *
 * A finding never carries a token: checks build every string from addresses, names, versions and
 * error messages, which the error catalogue keeps token-free.
 */

export const STATUSES = ['ok', 'warn', 'fail', 'skip'] as const;
/** `fail`: a VF would refuse to open (or a guest to start); `warn`: it opens, but unprotected or not for long. */
export type Status = (typeof STATUSES)[number];

/** Every check. */
export const CHECK_IDS = [
  'config',
  'vfio-pci',
  'kernel',
  'qemu',
  'hook',
  'broker',
  'store',
  'guest-definition',
  'device',
  'pf-configured',
  'pf-driver',
  'pf-token',
  'vf-driver',
  'kernel-log',
  'guest-token',
  'guest-iommufd',
] as const;
export type CheckId = (typeof CHECK_IDS)[number];

export interface Finding {
  readonly id: CheckId;
  readonly status: Status;
  /** The PCI address or guest the finding is about; null for the host as a whole. */
  readonly subject: string | null;
  /** One line: what was found. */
  readonly what: string;
  /** Why it matters for the VF token; empty when there is nothing to explain. */
  readonly why: string;
  /** The exact command or config change that fixes it; empty when nothing needs fixing. */
  readonly fix: string;
}

/** A maker of findings for one check and subject: `const f = findings('pf-driver', pf); f('ok', what)`. */
export type FindingMaker = (status: Status, what: string, why?: string, fix?: string) => Finding;

export function findings(id: CheckId, subject: string | null): FindingMaker {
  return (status, what, why = '', fix = '') => ({ id, status, subject, what, why, fix });
}
