/**
 * Durations as people write them in config: `30d`, `12h`, `1h30m`, `500ms`. Units: ms, s, m, h, d, w.
 * No fractions and no bare numbers, so `10` (seconds? minutes?) is never guessed at.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

const WHOLE = /^(?:[0-9]{1,6}(?:ms|s|m|h|d|w)){1,4}$/;
const PART = /([0-9]{1,6})(ms|s|m|h|d|w)/g;

/** Milliseconds, or null when the text is not a duration. */
export function parseDuration(text: string): number | null {
  if (!WHOLE.test(text)) return null;
  let ms = 0;
  for (const [, n, unit] of text.matchAll(PART)) ms += Number(n) * (UNIT_MS[unit ?? ''] ?? 0);
  return ms;
}

/** The largest unit that divides the value: 2592000000 → "30d". For messages about limits. */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] ?? 1;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
