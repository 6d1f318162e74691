/**
 * Where secrets ended up: files under a set of directories, and process command lines, searched for
 * any of a list of secrets (case-insensitively, with and without dashes, as test/support/log-capture
 * does for log lines).
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface SecretFile {
  readonly path: string;
  /** Permission bits, e.g. 0o600. */
  readonly mode: number;
}

export function holdsSecret(text: string, secrets: readonly string[]): boolean {
  const hay = text.toLowerCase();
  return secrets.some((s) => {
    const needle = s.toLowerCase();
    return hay.includes(needle) || hay.includes(needle.replaceAll('-', ''));
  });
}

/**
 * Regular files under `roots` (symlinks not followed) that hold a secret. `since` skips files last
 * changed before it (ms since the epoch), so a shared /tmp is searched only for what this run wrote.
 */
export async function filesHolding(
  roots: readonly string[],
  secrets: readonly string[],
  options: { readonly since?: number; readonly maxBytes?: number } = {},
): Promise<SecretFile[]> {
  const found: SecretFile[] = [];
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
  const visit = async (path: string, depth: number): Promise<void> => {
    const st = await lstat(path).catch(() => null);
    if (st === null || st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      if (depth > 12) return;
      const names = await readdir(path).catch(() => []);
      for (const name of names) await visit(join(path, name), depth + 1);
      return;
    }
    if (!st.isFile() || st.size > maxBytes) return;
    if (options.since !== undefined && st.mtimeMs < options.since) return;
    const text = await readFile(path, 'latin1').catch(() => '');
    if (holdsSecret(text, secrets)) found.push({ path, mode: st.mode & 0o777 });
  };
  for (const root of roots) await visit(root, 0);
  return found;
}

/** Running processes whose command line holds a secret (visible to every local user in /proc). */
export async function processesHolding(secrets: readonly string[]): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'latin1').catch(() => '');
    if (holdsSecret(cmdline, secrets)) pids.push(Number(name));
  }
  return pids;
}
