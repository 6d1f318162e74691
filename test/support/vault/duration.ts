/**
 * Durations the way Vault reads and prints them.
 *
 * Reading follows go-secure-stdlib parseutil.ParseDurationSecond, which Vault uses for every
 * TypeDurationSecond field (`increment`, `delete_version_after`, X-Vault-Wrap-TTL): a number or a
 * string of digits is seconds, anything else is a Go duration ("1h30m", "90s") where "d" also
 * means days. Printing follows Go's time.Duration.String() for whole seconds ("1h0m0s").
 */

const UNIT_SECONDS: Readonly<Record<string, number>> = {
  ns: 1e-9,
  us: 1e-6,
  µs: 1e-6,
  ms: 1e-3,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
};

const GO_DURATION = /^(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)/;

/** Whole seconds, or undefined when the value is not a duration Vault would accept. */
export function parseDurationSeconds(raw: unknown): number | undefined {
  if (typeof raw === 'number') return Number.isInteger(raw) && raw >= 0 ? raw : undefined;
  if (typeof raw !== 'string') return undefined;
  const text = raw.trim();
  if (text === '') return 0;
  if (/^\d+$/.test(text)) return Number(text);
  let rest = text;
  let total = 0;
  while (rest !== '') {
    const m = GO_DURATION.exec(rest);
    if (m === null) return undefined;
    const [whole, amount, unit] = m;
    total += Number(amount) * (UNIT_SECONDS[unit ?? ''] ?? Number.NaN);
    rest = rest.slice(whole.length);
  }
  return Number.isFinite(total) ? Math.floor(total) : undefined;
}

/** Go's time.Duration.String() for a whole number of seconds: 0s, 45s, 1m30s, 1h0m0s. */
export function formatGoDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h${m}m${sec}s`;
  if (m > 0) return `${m}m${sec}s`;
  return `${sec}s`;
}
