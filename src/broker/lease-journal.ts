/**
 * The lease table on disk: a snapshot and an append-only journal of the batches committed since.
 * Appending one line costs one write and one fdatasync; rewriting the whole table (hundreds of kB on
 * a full host) is left to compaction, so a guest start does not pay for every other lease.
 *
 * Files, both 0600 in the broker's 0700 state directory:
 * - `leases.json`, the snapshot: `{"version":1,"batch":N,"leases":[Lease…]}`, replaced atomically
 *   (writeFileAtomic). It holds every batch up to N. A file without `batch` (written before the
 *   journal existed) holds batch 0; a missing file is an empty table at batch 0.
 * - `leases.journal`: one line per committed batch, `{"batch":N,"set":[Lease…],"drop":[VF…]}`:
 *   what each VF the batch changed holds afterwards — `set` a lease, `drop` none. Batches are
 *   numbered one after the other.
 *
 * Loading replays, over the snapshot, the journal lines of batches after the snapshot's. Records are
 * absolute, so a line replayed over a table that already has it changes nothing; the numbers are
 * what makes compaction safe: it writes a snapshot of the table after batch N, then empties the
 * journal, and a crash between the two leaves lines that are all ≤ N and are skipped (replaying them
 * over the newer snapshot would bring back leases released since). A line with a number after the
 * snapshot's that does not continue from it means the files are from different times: refused.
 *
 * An append is one line ending in `\n`; a crash during one leaves the last line without its newline
 * or unreadable (blocks reach the disk in any order). That line was never confirmed: it is dropped
 * with a warning. An unreadable line before the last one is corruption, and the broker refuses to
 * start rather than guess which VFs are in use.
 *
 * An append that fails (ENOSPC, EIO, EROFS) may have left part of its line, and a line written
 * after it would make that part a corrupt middle line; so after a failure, and at the first batch
 * after a start (the loaded journal may end in a torn line), a batch is written by compaction.
 * Compaction also runs when the journal outgrows max(1 MiB, 4 × the snapshot), which bounds both the
 * journal and the time a start spends replaying it.
 *
 * The journal is opened for each append (open, write, fdatasync, close) rather than kept open: a
 * file open for writing stops its file system from being remounted read-only (EBUSY), and appends
 * through a descriptor kept open would go on "succeeding" into an unlinked file after the state
 * directory is removed, where an open fails (ENOENT) and the batch is written as a snapshot.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join, parse } from 'node:path';
import { z } from 'zod';
import { VfbError } from '../errors.js';
import type { Logger } from '../log.js';
import { isPciAddress, type PciAddress } from '../pci/address.js';
import { errnoOf, fileError, readJsonFile, removeStaleTemporaries, writeFileAtomic } from '../state-files.js';

export type LeaseState = 'pending' | 'active';

export interface Lease {
  readonly vf: PciAddress;
  readonly pf: PciAddress;
  readonly guestUuid: string;
  readonly guestName: string;
  readonly state: LeaseState;
  /** ms since the epoch of the last state change. */
  readonly since: number;
}

/** What a batch changed: each VF it touched and the lease it holds afterwards (null: none). */
export type LeaseChanges = ReadonlyMap<PciAddress, Lease | null>;

const MAX_LEASES = 100_000;
const addressSchema = z.string().refine(isPciAddress);
const leaseSchema = z.strictObject({
  vf: addressSchema,
  pf: addressSchema,
  guestUuid: z.string().max(64),
  guestName: z.string().max(256),
  state: z.enum(['pending', 'active']),
  since: z.number().int().nonnegative(),
});
const batchSchema = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const snapshotSchema = z.strictObject({
  version: z.literal(1),
  batch: batchSchema.optional(),
  leases: z.array(leaseSchema).max(MAX_LEASES),
});
const lineSchema = z.strictObject({
  batch: batchSchema.min(1),
  set: z.array(leaseSchema).max(MAX_LEASES),
  drop: z.array(addressSchema).max(MAX_LEASES),
});

/**
 * A batch is written as a snapshot once the journal holds 4 × the last snapshot (and at least
 * 1 MiB): rewriting the table then adds at most a quarter to what the appends wrote, and a start
 * replays at most that much.
 */
const MIN_COMPACT_BYTES = 1024 * 1024;
const COMPACT_PER_SNAPSHOT_BYTE = 4;
/**
 * Far above any journal written here (compaction at 4 × a snapshot of at most 100,000 leases,
 * ~20 MB, plus one batch): a larger file is not ours, and is not read into memory.
 */
const MAX_JOURNAL_BYTES = 256 * 1024 * 1024;

const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW } = constants;

export interface LeaseFiles {
  readonly snapshot: string;
  readonly journal: string;
}

/** `leases.json` → its journal, `leases.journal`, in the same directory. */
export function leaseFiles(snapshot: string): LeaseFiles {
  const { dir, name } = parse(snapshot);
  return { snapshot, journal: join(dir, `${name}.journal`) };
}

export interface LoadedLeases {
  readonly leases: Map<PciAddress, Lease>;
  /** The last batch the table includes. */
  readonly batch: number;
}

/**
 * The table a start would load: the snapshot, then the journal. Reads only, so tests and tools may
 * call it next to a running broker; a torn last line is logged at warn.
 */
export async function readLeaseFiles(files: LeaseFiles, logger: Logger): Promise<LoadedLeases> {
  const parsed = snapshotSchema.safeParse((await readJsonFile(files.snapshot)) ?? { version: 1, leases: [] });
  if (!parsed.success) {
    throw new VfbError('STORE_CORRUPT', `lease table ${files.snapshot} is malformed`, {
      hint: `move it and ${files.journal} aside and restart the broker; running guests re-register at their next start`,
      details: { path: files.snapshot },
    });
  }
  const leases = new Map(parsed.data.leases.map((l) => [l.vf, l]));
  const inSnapshot = parsed.data.batch ?? 0;
  let batch = inSnapshot;
  let previous: number | null = null;
  const lines = (await readJournal(files.journal)).split('\n');
  // A whole journal ends in a newline; text after the last one is an append cut short.
  const cut = lines.pop() !== '';
  for (const [i, text] of lines.entries()) {
    const line = parseLine(text);
    if (line === null && !cut && i === lines.length - 1) {
      warnTorn(logger, files, i + 1);
      break;
    }
    if (line === null) throw journalCorrupt(files, `is malformed at line ${i + 1}`);
    if (previous !== null && line.batch !== previous + 1) {
      throw journalCorrupt(files, `is out of order at line ${i + 1} (batch ${line.batch} after ${previous})`);
    }
    previous = line.batch;
    if (line.batch <= inSnapshot) continue;
    if (line.batch !== batch + 1) {
      throw journalCorrupt(
        files,
        `does not follow ${files.snapshot}: its line ${i + 1} is batch ${line.batch}, the snapshot ends at batch ${inSnapshot}`,
      );
    }
    for (const lease of line.set) leases.set(lease.vf, lease);
    for (const vf of line.drop) leases.delete(vf);
    batch = line.batch;
  }
  if (cut) warnTorn(logger, files, lines.length + 1);
  return { leases, batch };
}

/**
 * Writes the batches of one lease table. Not safe for concurrent calls: the table commits one
 * batch at a time (group commit).
 */
export class LeaseJournal {
  readonly #files: LeaseFiles;
  readonly #logger: Logger;
  #batch: number;
  /** Bytes appended since the journal was emptied; null: the next batch compacts. */
  #appended: number | null = null;
  #compactAt = MIN_COMPACT_BYTES;

  private constructor(files: LeaseFiles, logger: Logger, batch: number) {
    this.#files = files;
    this.#logger = logger;
    this.#batch = batch;
  }

  /** Loads the table; call before any write, while none can be under way (temporaries are removed). */
  static async open(
    snapshot: string,
    logger: Logger,
  ): Promise<{ journal: LeaseJournal; leases: Map<PciAddress, Lease> }> {
    const files = leaseFiles(snapshot);
    await removeStaleTemporaries(files.snapshot);
    const { leases, batch } = await readLeaseFiles(files, logger);
    return { journal: new LeaseJournal(files, logger, batch), leases };
  }

  /**
   * Makes one batch durable: `changes` as a journal line, or the whole table after the batch (what
   * `table` returns, asked for only then) as a snapshot when the journal must be restarted. When it
   * rejects, the batch does not count: a start ignores whatever part of it reached the disk, or
   * takes it as a whole.
   */
  async commit(changes: LeaseChanges, table: () => readonly Lease[]): Promise<void> {
    const batch = this.#batch + 1;
    try {
      const append = this.#appended !== null && this.#appended < this.#compactAt;
      if (!append || !(await this.#append(batch, changes))) await this.#compact(batch, table);
    } catch (err) {
      // What the failed write left (part of a line, or a snapshot renamed but not synced) carries
      // this batch's number, which the next batch reuses: a line after it would be misread.
      this.#appended = null;
      throw err;
    }
    this.#batch = batch;
  }

  /** Resolves false, having written nothing, when the journal is gone (its directory was removed). */
  async #append(batch: number, changes: LeaseChanges): Promise<boolean> {
    const set: Lease[] = [];
    const drop: PciAddress[] = [];
    for (const [vf, lease] of changes) {
      if (lease === null) drop.push(vf);
      else set.push(lease);
    }
    const line = Buffer.from(JSON.stringify({ batch, set, drop }) + '\n');
    let fh: FileHandle;
    try {
      fh = await open(this.#files.journal, O_WRONLY | O_APPEND | O_NOFOLLOW);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return false;
      throw fileError('write', this.#files.journal, err);
    }
    try {
      try {
        await fh.writeFile(line);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      throw fileError('write', this.#files.journal, err);
    }
    this.#appended = (this.#appended ?? 0) + line.length;
    return true;
  }

  async #compact(batch: number, table: () => readonly Lease[]): Promise<void> {
    let fh: FileHandle;
    try {
      // Created before the snapshot: writeFileAtomic's directory fsync then makes its name durable.
      fh = await open(this.#files.journal, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW, 0o600);
    } catch (err) {
      throw fileError('write', this.#files.journal, err);
    }
    try {
      const text = JSON.stringify({ version: 1, batch, leases: table() }) + '\n';
      await writeFileAtomic(this.#files.snapshot, text, 0o600);
      this.#compactAt = Math.max(MIN_COMPACT_BYTES, COMPACT_PER_SNAPSHOT_BYTE * Buffer.byteLength(text));
      this.#appended = await this.#empty(fh);
    } finally {
      // Only the truncate went through it, and #empty has its outcome.
      await fh.close().catch(() => undefined);
    }
  }

  /**
   * The batch is on disk in the snapshot, and so is every line of the journal (a start skips them):
   * emptying it only saves space, and when that fails the next batch tries again.
   */
  async #empty(fh: FileHandle): Promise<number | null> {
    try {
      await fh.truncate(0);
      await fh.datasync();
      return 0;
    } catch (err) {
      this.#logger.warn(
        { err, path: this.#files.journal },
        'cannot empty the lease journal after writing a snapshot; the next change tries again',
      );
      return null;
    }
  }
}

/** The journal's text; empty when there is none. */
async function readJournal(path: string): Promise<string> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return '';
    throw fileError('read', path, err);
  }
  try {
    if ((await fh.stat()).size > MAX_JOURNAL_BYTES) {
      throw new VfbError('STORE_CORRUPT', `lease journal ${path} is larger than ${MAX_JOURNAL_BYTES} bytes`, {
        hint: 'it is not a journal vfbroker wrote: move it aside and restart the broker',
        details: { path },
      });
    }
    return await fh.readFile('utf8');
  } catch (err) {
    throw err instanceof VfbError ? err : fileError('read', path, err);
  } finally {
    await fh.close();
  }
}

type JournalLine = z.infer<typeof lineSchema>;

function parseLine(text: string): JournalLine | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  const parsed = lineSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

function warnTorn(logger: Logger, files: LeaseFiles, line: number): void {
  logger.warn(
    { path: files.journal, line },
    'dropped the torn last line of the lease journal: the broker stopped while writing it, before that change was confirmed',
  );
}

function journalCorrupt(files: LeaseFiles, what: string): VfbError {
  return new VfbError('STORE_CORRUPT', `lease journal ${files.journal} ${what}`, {
    hint: `move ${files.journal} aside and restart the broker: it starts from ${files.snapshot}, and guests started since re-register at their next start`,
    details: { path: files.journal },
  });
}
