/**
 * Command lines that may carry a secret. A caller wraps a secret element (a VF token passed as
 * `-v <uuid>` or `--vfio-vf-token=<uuid>`) in `secret()`; everything the runner logs or puts into an
 * error is built from `renderArgv`, which shows `<redacted>` in its place. The only place the plain
 * value is read is `plainArgv`, right before the exec.
 */

export const REDACTED_ARG = '<redacted>';

export interface SecretArg {
  /** Shown as is, e.g. `--vfio-vf-token=`; the secret follows it in the same argv element. */
  readonly prefix: string;
  readonly secret: string;
}

export type ArgvElement = string | SecretArg;
/** The executable (never a secret) and its arguments. */
export type Argv = readonly [string, ...ArgvElement[]];

export function secret(value: string, prefix = ''): SecretArg {
  return { prefix, secret: value };
}

export function isSecretArg(el: ArgvElement): el is SecretArg {
  return typeof el !== 'string';
}

/** The argv as it may appear in a log line or an error message. */
export function renderArgv(argv: readonly ArgvElement[]): string {
  return argv.map((el) => (isSecretArg(el) ? el.prefix + REDACTED_ARG : quote(el))).join(' ');
}

/** The argv as the process gets it. */
export function plainArgv(argv: Argv): [string, ...string[]] {
  const [first, ...rest] = argv;
  return [first, ...rest.map((el) => (isSecretArg(el) ? el.prefix + el.secret : el))];
}

export function secretsOf(argv: readonly ArgvElement[]): string[] {
  return argv.filter(isSecretArg).map((el) => el.secret);
}

/**
 * Output of a child is untrusted as far as secrets go: a program may echo its command line (DPDK's
 * EAL prints its arguments at debug level). Every captured line goes through this before anyone sees it.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) {
    if (s.length > 0) out = out.split(s).join(REDACTED_ARG);
  }
  return out;
}

/** The executable's name, for messages and the package table. */
export function commandName(argv: Argv): string {
  return argv[0].slice(argv[0].lastIndexOf('/') + 1);
}

function quote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}
