/**
 * What the benchmarks print: a header (what was measured, on what machine, against which targets),
 * percentiles, and aligned tables. Figures only; a benchmark asserts nothing about them.
 */
import { cpus, loadavg } from 'node:os';

/** Nearest-rank percentile of `values` (need not be sorted); p in (0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] as number;
}

export function header(title: string, lines: readonly string[]): string {
  const machine = `${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? 'unknown'}), node ${process.version}`;
  return [title, `  on: ${machine}; ${machineLoad()}`, ...lines.map((l) => `  ${l}`), ''].join('\n');
}

/** Other work on the machine skews every figure: the bench says how busy it was, at start and end. */
export function machineLoad(): string {
  const [one = 0] = loadavg();
  return `load average ${one.toFixed(1)} on ${cpus().length} CPUs`;
}

/** Columns right-aligned except the first; `rows` include the header row. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length))) ?? [];
  return rows
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '),
    )
    .map((line) => `  ${line.trimEnd()}`)
    .join('\n');
}

export function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

export function ms(value: number): string {
  return value.toFixed(value < 10 ? 2 : 1);
}

/** "met" or "MISSED", for a figure next to its target. */
export function verdict(met: boolean): string {
  return met ? 'met' : 'MISSED';
}
