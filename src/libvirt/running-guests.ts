/**
 * Which running libvirt guest a process is the QEMU of. libvirt's qemu driver, running as root,
 * keeps a status file per active domain in its run directory (/run/libvirt/qemu/<name>.xml, see
 * domain-status.ts) that records QEMU's pid and the domain's UUID. The bus vouches for a caller's
 * pid (SO_PEERCRED); when a status file libvirt wrote names that pid, the caller is that guest's
 * QEMU. This is how the broker serves SetNumVfs to a guest that owns a PF.
 *
 * Only what root wrote counts: the directory and each file must be owned by root and writable by
 * no one else (libvirt writes them 0600, through a rename, in a root-owned directory). A file is
 * opened without following links and checked on its descriptor, so the file checked is the file
 * read. A file that fails a check, or is malformed or larger than the cap, is skipped with a
 * warning — never fatal: it only means that file vouches for no one. Nothing the caller says about
 * itself (its command line, its name) is ever looked at.
 *
 * A status file can outlive its QEMU (QEMU died while libvirt was down, so nothing removed it), and
 * the kernel may give its pid to another process. libvirt writes the file after it forks QEMU, so
 * the real QEMU started before the file was last written; a process that started later is not it.
 *
 * Shell equivalent: `grep -l "pid='PID'" /run/libvirt/qemu/*.xml`, on root's files only.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import { readCapped } from '../capped-read.js';
import { isVfbError } from '../errors.js';
import type { Logger } from '../log.js';
import { processStartMs } from '../process/start-time.js';
import { readDomainStatusXml } from './domain-status.js';
import { decodeXmlBytes } from './domain-xml.js';

/** A status file of a large guest is tens of KiB; the parser's own cap is 4 Mi characters. */
export const MAX_STATUS_FILE_BYTES = 4 * 1024 * 1024;
/** A process start time from /proc is known to within a second (btime); a little more for clock slew. */
const START_TIME_SLACK_MS = 2_000;

export interface QemuGuest {
  readonly uuid: string;
  readonly name: string;
  readonly pid: number;
  /** The status file that named the pid. */
  readonly file: string;
}

/** A guest as its status file names it, and when that file was last written (ms since the epoch). */
interface Named {
  readonly guest: QemuGuest;
  readonly writtenMs: number;
}

export type QemuLookup =
  | { readonly found: true; readonly guest: QemuGuest }
  /** `reason` is one line fit for the caller: it names no other guest and quotes no file. */
  | { readonly found: false; readonly reason: string };

export interface RunningGuestsOptions {
  /** libvirt's run directory for the qemu driver (broker.yaml `libvirt.runDirectory`). */
  readonly directory: string;
  readonly logger: Logger;
  /** Where /proc is; tests point it at a fixture. */
  readonly procRoot?: string;
}

type FileOutcome =
  | ({ readonly kind: 'names-pid' } & Named)
  | { readonly kind: 'other' }
  | { readonly kind: 'skipped'; readonly problem: string };

export class RunningGuests {
  readonly directory: string;
  readonly #logger: Logger;
  readonly #procRoot: string;
  /**
   * Root, and the uid the broker runs as (an unprivileged demo or test broker): either could write
   * anything the broker reads anyway. A production broker runs as root, so this is root alone.
   */
  readonly #trusted: ReadonlySet<number> = new Set([0, process.geteuid?.() ?? 0]);

  constructor(options: RunningGuestsOptions) {
    this.directory = options.directory;
    this.#logger = options.logger.child({ libvirtRunDirectory: options.directory });
    this.#procRoot = options.procRoot ?? '/proc';
  }

  /** The running guest whose QEMU has this pid, read afresh from libvirt's status files. */
  async byQemuPid(pid: number): Promise<QemuLookup> {
    const notQemu = `pid ${pid} is not the QEMU of a running libvirt guest`;
    const unsafe = await this.#checkDirectory();
    if (unsafe !== null) return { found: false, reason: `${notQemu}: ${unsafe}` };
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (err) {
      return { found: false, reason: `${notQemu}: ${this.directory} cannot be listed (${errno(err)})` };
    }
    const matches: Named[] = [];
    let skipped = 0;
    // `<name>.xml` only: libvirt also keeps `<name>.pid`, sockets and directories there, and writes
    // a status file as `<name>.xml.new` before renaming it into place.
    for (const name of names.filter((n) => n.endsWith('.xml')).sort()) {
      const file = join(this.directory, name);
      const outcome = await this.#readStatus(file, pid);
      if (outcome.kind === 'skipped') {
        skipped++;
        this.#logger.warn({ file, problem: outcome.problem }, 'libvirt status file skipped');
      } else if (outcome.kind === 'names-pid') {
        matches.push(outcome);
      }
    }
    const [first, ...others] = matches;
    if (first !== undefined && others.every((m) => m.guest.uuid === first.guest.uuid)) {
      return this.#sameProcess(first, notQemu);
    }
    if (first !== undefined) {
      // Two domains cannot share a live QEMU: one file is stale. Which one is not ours to guess.
      this.#logger.warn(
        { pid, files: matches.map((m) => m.guest.file) },
        'several libvirt status files name one pid',
      );
      return { found: false, reason: `${notQemu}: ${matches.length} status files name it, trusting none` };
    }
    const why = skipped === 0 ? '' : `; ${skipped} untrustworthy or malformed, skipped (see the broker log)`;
    return { found: false, reason: `${notQemu}: no status file in ${this.directory} names it${why}` };
  }

  /** The guest, if the process with its pid is the one its status file was written for. */
  async #sameProcess({ guest, writtenMs }: Named, notQemu: string): Promise<QemuLookup> {
    const startedMs = await processStartMs(guest.pid, this.#procRoot);
    if (startedMs === null) return { found: false, reason: `${notQemu}: it has exited` };
    if (startedMs <= writtenMs + START_TIME_SLACK_MS) return { found: true, guest };
    this.#logger.warn(
      { pid: guest.pid, file: guest.file, startedMs, writtenMs },
      'a libvirt status file names a pid that a later process now has',
    );
    return {
      found: false,
      reason: `${notQemu}: it started after ${guest.file} was last written, so that stale file names an earlier process`,
    };
  }

  /** Null when the directory may be trusted, else why not (and a warning in the log). */
  async #checkDirectory(): Promise<string | null> {
    let st: Stats;
    try {
      st = await lstat(this.directory);
    } catch (err) {
      if (errno(err) === 'ENOENT') return `${this.directory} does not exist (no guest is running)`;
      return `${this.directory} cannot be read (${errno(err)})`;
    }
    const problem = st.isDirectory()
      ? this.#ownershipProblem(st)
      : `is not a directory${st.isSymbolicLink() ? ' (a symbolic link)' : ''}`;
    if (problem === null) return null;
    this.#logger.warn({ problem }, "libvirt's run directory is not trusted; no guest can be recognised");
    return `${this.directory} ${problem}`;
  }

  async #readStatus(file: string, pid: number): Promise<FileOutcome> {
    let handle;
    try {
      // O_NONBLOCK: a FIFO planted in place of a status file must not hang the broker.
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      // Gone since the listing: that domain stopped, and names no one.
      if (errno(err) === 'ENOENT') return { kind: 'other' };
      const problem = errno(err) === 'ELOOP' ? 'is a symbolic link' : `cannot be opened (${errno(err)})`;
      return { kind: 'skipped', problem };
    }
    try {
      const st = await handle.stat();
      const problem = st.isFile() ? this.#ownershipProblem(st) : 'is not a regular file';
      if (problem !== null) return { kind: 'skipped', problem };
      if (st.size > MAX_STATUS_FILE_BYTES) return { kind: 'skipped', problem: tooLarge(st.size) };
      const bytes = await readCapped(handle, st.size, MAX_STATUS_FILE_BYTES);
      if (bytes.length > MAX_STATUS_FILE_BYTES) return { kind: 'skipped', problem: tooLarge(bytes.length) };
      const text = decodeXmlBytes(bytes, 'the status file');
      // A file that does not even contain the digits names another QEMU: not worth a parse.
      if (!text.includes(String(pid))) return { kind: 'other' };
      const status = readDomainStatusXml(text, 'the status file');
      // A shut-off domain has no QEMU, whatever pid its file still records.
      if (status.pid !== pid || status.state === 'shutoff') return { kind: 'other' };
      return {
        kind: 'names-pid',
        guest: { uuid: status.uuid, name: status.name, pid, file },
        writtenMs: st.mtimeMs,
      };
    } catch (err) {
      // The parser's messages name the problem and its position, never the file's text (which holds
      // the guest's definition, vf-tokens included).
      if (isVfbError(err)) return { kind: 'skipped', problem: err.message };
      return { kind: 'skipped', problem: `cannot be read (${errno(err)})` };
    } finally {
      await handle.close();
    }
  }

  #ownershipProblem(st: Stats): string | null {
    if (!this.#trusted.has(st.uid)) return `is owned by uid ${st.uid}, not by root`;
    if ((st.mode & 0o022) !== 0) {
      return `is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
    }
    return null;
  }
}

function tooLarge(size: number): string {
  return `is larger than ${MAX_STATUS_FILE_BYTES} bytes (${size})`;
}

function errno(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown error';
}
