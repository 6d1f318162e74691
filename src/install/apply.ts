/**
 * Applies an install plan under a root directory, idempotently: a file already holding the planned
 * content and mode is left alone, configuration the operator has is never overwritten, and every
 * write is atomic. The result says, per file, what happened, and whether libvirt must be restarted
 * to see its first hook.
 */
import { chmod, mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HOOK_PATH, type InstallDirectory, type InstallEntry, type InstallFile } from './plan.js';
import { errnoOf, writeFileAtomic } from '../state-files.js';

export type FileOutcome = 'written' | 'updated' | 'unchanged' | 'kept';

export interface InstallReport {
  readonly files: ReadonlyArray<{
    readonly path: string;
    readonly outcome: FileOutcome;
    readonly why: string;
  }>;
  /** libvirt looks for hooks when it starts: the first one needs a restart to be seen. */
  readonly restartLibvirt: boolean;
}

export async function applyInstall(
  plan: readonly InstallEntry[],
  root: string,
  dryRun: boolean,
): Promise<InstallReport> {
  const firstHook =
    !(await hasHooks(join(root, dirname(HOOK_PATH)))) &&
    !(await exists(join(root, '/etc/libvirt/hooks/qemu')));
  const files = [];
  for (const entry of plan) {
    const target = join(root, entry.path);
    const outcome =
      entry.kind === 'file'
        ? await applyFile(entry, target, dryRun)
        : await applyDirectory(entry, target, dryRun);
    files.push({ path: entry.path, outcome, why: entry.why });
  }
  return { files, restartLibvirt: firstHook };
}

async function applyFile(file: InstallFile, target: string, dryRun: boolean): Promise<FileOutcome> {
  const current = await readCurrent(target);
  let outcome: FileOutcome;
  if (current === null) outcome = 'written';
  else if (file.existing === 'keep') outcome = 'kept';
  else if (current.content === file.content && current.mode === file.mode) outcome = 'unchanged';
  else outcome = 'updated';
  if (!dryRun && (outcome === 'written' || outcome === 'updated')) {
    await mkdir(dirname(target), { recursive: true, mode: 0o755 });
    await writeFileAtomic(target, file.content, file.mode);
    await chmod(target, file.mode); // the umask may have narrowed the mode
  }
  return outcome;
}

async function applyDirectory(dir: InstallDirectory, target: string, dryRun: boolean): Promise<FileOutcome> {
  const mode = await stat(target).then(
    (s) => s.mode & 0o7777,
    (err: unknown) => {
      if (errnoOf(err) === 'ENOENT') return null;
      throw err;
    },
  );
  const outcome: FileOutcome = mode === null ? 'written' : mode === dir.mode ? 'unchanged' : 'updated';
  if (!dryRun && outcome !== 'unchanged') {
    await mkdir(target, { recursive: true, mode: dir.mode });
    await chmod(target, dir.mode);
  }
  return outcome;
}

async function readCurrent(path: string): Promise<{ content: string; mode: number } | null> {
  try {
    return { content: await readFile(path, 'utf8'), mode: (await stat(path)).mode & 0o7777 };
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw err;
  }
}

/** Whether libvirt already runs hooks from qemu.d (so it has been restarted since one appeared). */
async function hasHooks(dir: string): Promise<boolean> {
  try {
    for (const name of await readdir(dir)) {
      if (((await stat(join(dir, name))).mode & 0o111) !== 0) return true;
    }
    return false;
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
