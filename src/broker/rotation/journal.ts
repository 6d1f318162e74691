/**
 * The rotation journal: one small JSON file per PF (`<pf>.json`) in a private directory under the
 * broker's state directory, rewritten atomically before each step of a rotation, so that a broker
 * killed at any point finds the step it had reached; recovery.ts decides what that step means.
 * A file exists exactly while a rotation of that PF is unfinished.
 *
 * The journal names generations, never tokens: the store holds the active and the pending token,
 * and a crash between any two writes leaves the journal and the store each at a whole state.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { VfbError } from '../../errors.js';
import { isPciAddress, type PciAddress } from '../../pci/address.js';
import { ensurePrivateDirectory } from '../../private-files.js';
import { errnoOf, readJsonFile, writeFileAtomic } from '../../state-files.js';

/** In the order a rotation passes them; `rolling-back` replaces the last ones when the PF driver refuses. */
export const JOURNAL_STEPS = [
  'writing-pending',
  'draining',
  'applying',
  'promoting',
  'syncing',
  'rolling-back',
] as const;
export type JournalStep = (typeof JOURNAL_STEPS)[number];

export type AppliedMode = 'live' | 'drain';

export interface JournalEntry {
  readonly pf: PciAddress;
  readonly mode: AppliedMode;
  readonly step: JournalStep;
  /** The active generation the rotation started from. */
  readonly from: number;
  /** The pending generation; null until the store has written it. */
  readonly generation: number | null;
  /** ISO 8601. */
  readonly startedAt: string;
  /** When a drain gives up, ISO 8601; null outside `draining`. */
  readonly deadline: string | null;
}

const FORMAT = 1;

const entrySchema = z.strictObject({
  format: z.literal(FORMAT),
  pf: z.string().refine(isPciAddress),
  mode: z.enum(['live', 'drain']),
  step: z.enum(JOURNAL_STEPS),
  from: z.number().int().min(1),
  generation: z.number().int().min(2).nullable(),
  startedAt: z.string().min(1).max(64),
  deadline: z.string().min(1).max(64).nullable(),
});

const FILE = /^(.+)\.json$/;

export class RotationJournal {
  readonly directory: string;
  readonly #entries = new Map<PciAddress, JournalEntry>();
  #ready: Promise<void> | null = null;

  constructor(directory: string) {
    this.directory = directory;
  }

  get(pf: PciAddress): JournalEntry | undefined {
    return this.#entries.get(pf);
  }

  /**
   * Reads every entry on disk (broker start). A malformed file stops the load: which step its
   * rotation reached is unknown, and guessing could leave a PF driver on a token the store dropped.
   */
  async load(): Promise<JournalEntry[]> {
    await this.#ensureDirectory();
    const names = (await readdir(this.directory)).filter((n) => !n.startsWith('.')).sort();
    for (const name of names) {
      const pf = FILE.exec(name)?.[1];
      if (pf === undefined || !isPciAddress(pf)) continue;
      const file = join(this.directory, name);
      const parsed = entrySchema.safeParse(await readJsonFile(file));
      if (!parsed.success || parsed.data.pf !== pf) {
        throw new VfbError('STORE_CORRUPT', `rotation journal ${file} is malformed`, {
          hint: `check PF ${pf} with \`vfbroker token status\`, then move the file aside and restart the broker`,
          details: { file },
        });
      }
      const { mode, step, from, generation, startedAt, deadline } = parsed.data;
      this.#entries.set(pf, { pf, mode, step, from, generation, startedAt, deadline });
    }
    return [...this.#entries.values()];
  }

  /** Records the step reached; returns when it is on disk. */
  async write(entry: JournalEntry): Promise<void> {
    await this.#ensureDirectory();
    await writeFileAtomic(this.#file(entry.pf), JSON.stringify({ format: FORMAT, ...entry }) + '\n', 0o600);
    this.#entries.set(entry.pf, entry);
  }

  /**
   * The rotation is over. The unlink is not made durable: an entry that comes back after a power
   * cut is at a step whose recovery finds the work done and repeats only idempotent parts.
   */
  async remove(pf: PciAddress): Promise<void> {
    try {
      await unlink(this.#file(pf));
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') {
        throw new VfbError('UNAVAILABLE', `cannot remove ${this.#file(pf)}: ${errnoOf(err) ?? 'EIO'}`, {
          hint: 'check the state directory: mount options and ownership',
          details: { path: this.#file(pf) },
        });
      }
    }
    this.#entries.delete(pf);
  }

  #file(pf: PciAddress): string {
    return join(this.directory, `${pf}.json`);
  }

  #ensureDirectory(): Promise<void> {
    if (this.#ready === null) {
      const ready = ensurePrivateDirectory(this.directory, 'rotation journal directory');
      // A failure is not cached: the next write tries again (the operator may have fixed it).
      ready.catch(() => {
        if (this.#ready === ready) this.#ready = null;
      });
      this.#ready = ready;
    }
    return this.#ready;
  }
}
