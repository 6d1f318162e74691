/**
 * The one logger. pino writes JSON lines to stdout (journald captures them under systemd); the
 * redact list below is the only place that knows which fields may carry a secret, so a new field
 * that holds one is added here and nowhere else.
 *
 * Redaction is a second line of defence: code never puts a token into a message string, because
 * pino cannot redact inside strings. The log-capture helper in test/support checks both.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

/** Field names that may hold a VF token, a Vault token or a secret id, at any of the depths we log. */
const SECRET_FIELDS = [
  'token',
  'vfToken',
  'vf_token',
  'clientToken',
  'client_token',
  'secretId',
  'secret_id',
  'password',
] as const;

const SECRET_HEADERS = ['authorization', 'Authorization', 'x-vault-token', 'X-Vault-Token'] as const;

/** Exact paths, no wildcards: pino's wildcard redaction is slow on hot paths. */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_FIELDS,
  ...SECRET_FIELDS.map((f) => `*.${f}`),
  ...SECRET_HEADERS.map((h) => `headers["${h}"]`),
  ...SECRET_HEADERS.map((h) => `*.headers["${h}"]`),
  ...SECRET_HEADERS.map((h) => `config.headers["${h}"]`),
  ...SECRET_HEADERS.map((h) => `err.config.headers["${h}"]`),
  'auth.client_token',
  'err.auth',
];

export const REDACTED = '[redacted]';

/**
 * The broker's audit logger: one line per decision, on the hot path of every guest start. Its
 * lines are built field by field from values that are never secrets (caller, guest, VF, verdict,
 * rule), so only top-level secret names are redacted: the one-level wildcards above cost a tenth of
 * the broker's CPU per PrepareGuest, walking every field of every line.
 */
export function auditLogger(logger: Logger): Logger {
  return logger.child({ audit: true }, { redact: { paths: [...SECRET_FIELDS], censor: REDACTED } });
}

export interface LoggerOptions {
  readonly level?: LevelWithSilent;
  /** Where the JSON lines go; stdout when absent. Tests pass a capturing stream. */
  readonly destination?: DestinationStream;
  /** Fixed fields stamped on every line (component, plugin, pf…). */
  readonly base?: Readonly<Record<string, string>>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const config = {
    level: options.level ?? 'info',
    base: { ...options.base },
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    // Errors are logged as code + message + errno only: a whole error object can carry request
    // headers (node-vault's axios errors carry X-Vault-Token) and stack traces.
    serializers: { err: serializeError },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}

export function serializeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const out: Record<string, unknown> = { type: err.name, message: err.message };
    const e = err as Error & { code?: unknown; details?: unknown };
    if (typeof e.code === 'string') out['code'] = e.code;
    if (e.details !== undefined) out['details'] = e.details;
    return out;
  }
  return { type: typeof err };
}
