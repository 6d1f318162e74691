/**
 * The doctor's report for people (one block per finding) and for scripts (--json).
 *
 * Text: a line `✓|!|✗|- <check>: <what>`, then, for anything but ok, `why:` and `fix:` lines
 * indented under it, and a summary line last. Colour only when the Output layer allows it.
 *
 * JSON (one document on stdout):
 *   {
 *     "target":  {"kind": "host"} | {"kind": "vf", "address": "0000:04:10.0"} | {"kind": "guest", "name": "vm1"},
 *     "kernelRelease": "6.8.0-45-generic",
 *     "failed":  true,                       // some finding has status "fail"; the exit status is 1
 *     "summary": {"ok": 9, "warn": 1, "fail": 2, "skip": 1},
 *     "findings": [
 *       { "id": "pf-driver",                 // one of CHECK_IDS (finding.ts)
 *         "status": "fail",                  // "ok" | "warn" | "fail" | "skip"
 *         "subject": "0000:04:00.0",         // PCI address or guest name; null for the host
 *         "what": "…", "why": "…", "fix": "…" }   // "" when there is nothing to say
 *     ]
 *   }
 */
import type { DoctorReport } from './doctor.js';
import { STATUSES, type Finding, type Status } from './finding.js';

const MARK: Readonly<Record<Status, string>> = { ok: '✓', warn: '!', fail: '✗', skip: '-' };
/** SGR colours: green, yellow, red, dim. */
const SGR: Readonly<Record<Status, string>> = { ok: '32', warn: '33', fail: '31', skip: '2' };

export function renderText(report: DoctorReport, colour: boolean): string[] {
  const paint = (status: Status, text: string) => (colour ? `\x1b[${SGR[status]}m${text}\x1b[0m` : text);
  const lines: string[] = [];
  for (const f of report.findings) {
    lines.push(`${paint(f.status, MARK[f.status])} ${f.id}: ${f.what}`);
    if (f.status === 'ok') continue;
    if (f.why !== '') lines.push(`    why: ${f.why}`);
    if (f.fix !== '') lines.push(`    fix: ${f.fix}`);
  }
  const s = summarise(report.findings);
  lines.push(
    '',
    `${s.ok} ok, ${s.warn} warning(s), ${s.fail} failed, ${s.skip} skipped: ` +
      (report.failed ? 'a VF would refuse to open (see ✗ above)' : 'no check failed'),
  );
  return lines;
}

export function reportJson(report: DoctorReport): unknown {
  return {
    target: report.target,
    kernelRelease: report.kernelRelease,
    failed: report.failed,
    summary: summarise(report.findings),
    findings: report.findings,
  };
}

function summarise(list: readonly Finding[]): Record<Status, number> {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
  for (const f of list) counts[f.status]++;
  return counts;
}
