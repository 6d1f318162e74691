/**
 * A boot storm: many guests start at once, so libvirt runs the qemu hook at `prepare` for all of
 * them in parallel against one broker. The guests are a mix whose right answers are known:
 *
 * - authorised: granted a VF of its own, presenting the PF's active token → exit 0, no output;
 * - stale: granted a VF of its own, presenting a token the PF never had → exit 1, token-stale line;
 * - unauthorised: granted nothing, presenting the active token of a VF another guest holds
 *   (knowing a token is not enough) → exit 1, denied line.
 *
 * A hook that is killed, or answers with its timeout, counts as a timeout; any other unexpected
 * exit status or message as a wrong verdict.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { domainXml } from './guest-xml.js';
import { hookArgs, runHook, type HookRun } from './hook-runner.js';
import { VFS_PER_PF, type ServeWorld, type WorldGuest } from './serve-world.js';
import { REFUSED_EXIT } from '../../src/hooks/qemu-hook.js';

export type StormKind = 'authorised' | 'stale' | 'unauthorised';

export interface StormMix {
  readonly authorised: number;
  readonly stale: number;
  readonly unauthorised: number;
}

export interface StormGuest extends WorldGuest {
  readonly kind: StormKind;
}

export interface StormMiss {
  readonly guest: string;
  readonly kind: StormKind;
  readonly exitCode: number | null;
  readonly stderr: string;
}

export interface StormResult {
  readonly hooks: number;
  readonly right: number;
  readonly timeouts: readonly StormMiss[];
  readonly wrong: readonly StormMiss[];
  readonly wallMs: number;
}

/** The PFs a mix needs: authorised and stale guests each hold a VF of their own. */
export function pfsFor(mix: StormMix): number {
  return Math.max(1, Math.ceil((mix.authorised + mix.stale) / VFS_PER_PF));
}

/** The guests of a mix, interleaved (one of each kind in turn) so no kind arrives all at once. */
export function stormGuests(mix: StormMix): StormGuest[] {
  const granted = (kind: StormKind, count: number, first: number): StormGuest[] =>
    Array.from({ length: count }, (_, i) => {
      const k = first + i;
      return {
        kind,
        name: `storm-${k}`,
        uuid: randomUUID(),
        grants: [{ pf: Math.floor(k / VFS_PER_PF), vf: k % VFS_PER_PF }],
      };
    });
  const queues = [
    granted('authorised', mix.authorised, 0),
    granted('stale', mix.stale, mix.authorised),
    Array.from({ length: mix.unauthorised }, (_, k): StormGuest => ({
      kind: 'unauthorised',
      name: `intruder-${k}`,
      uuid: randomUUID(),
      grants: [],
    })),
  ];
  const out: StormGuest[] = [];
  while (queues.some((q) => q.length > 0)) {
    for (const q of queues) {
      const g = q.shift();
      if (g) out.push(g);
    }
  }
  return out;
}

/**
 * Each guest's definition, as `vfbroker guest attach` would have written it, in a file of the
 * world's directory (0600: it carries a token); keyed by guest UUID.
 */
export async function stormDefinitions(
  world: ServeWorld,
  guests: readonly StormGuest[],
): Promise<Map<string, string>> {
  const client = await world.client();
  const dir = join(world.dir, 'guests');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const defs = new Map<string, string>();
  const granted = guests.filter((g) => g.kind !== 'unauthorised');
  let victim = 0;
  for (const g of guests) {
    let vf;
    let token;
    if (g.kind === 'unauthorised') {
      // The VF (and token) of some granted guest, copied from elsewhere.
      const other = granted[victim++ % granted.length];
      const grant = other?.grants[0] ?? { pf: 0, vf: 0 };
      vf = await world.vf(grant.pf, grant.vf);
      token = await client.getToken(vf);
    } else {
      const grant = g.grants[0] ?? { pf: 0, vf: 0 };
      vf = await world.vf(grant.pf, grant.vf);
      token = g.kind === 'authorised' ? await client.getToken(vf) : randomUUID();
    }
    const file = join(dir, `${g.uuid}.xml`);
    await writeFile(file, domainXml(g.name, g.uuid, [{ vf, token }]), { mode: 0o600 });
    defs.set(g.uuid, file);
  }
  return defs;
}

/** Runs every guest's `prepare` hook at once and judges each answer. */
export async function runStorm(
  world: ServeWorld,
  guests: readonly StormGuest[],
  definitions: ReadonlyMap<string, string>,
  options: { readonly killAfterMs?: number } = {},
): Promise<StormResult> {
  const started = performance.now();
  const runs = await Promise.all(
    guests.map((g) =>
      runHook(
        world.hookSettings,
        hookArgs(g.name, 'prepare'),
        { file: definitions.get(g.uuid) ?? '/dev/null' },
        options,
      ),
    ),
  );
  const wallMs = performance.now() - started;
  const timeouts: StormMiss[] = [];
  const wrong: StormMiss[] = [];
  runs.forEach((run, i) => {
    const g = guests[i] as StormGuest;
    const miss = { guest: g.name, kind: g.kind, exitCode: run.exitCode, stderr: run.stderr };
    if (isTimeout(run)) timeouts.push(miss);
    else if (!isRight(g.kind, run)) wrong.push(miss);
  });
  return {
    hooks: guests.length,
    right: guests.length - timeouts.length - wrong.length,
    timeouts,
    wrong,
    wallMs,
  };
}

/** Killed by us, or refused by its own deadline (waiting for the broker, or for stdin). */
function isTimeout(run: HookRun): boolean {
  return run.killed || /broker not reachable within|before the hook's deadline/.test(run.stderr);
}

/** The exact outcome each kind must have. */
function isRight(kind: StormKind, run: HookRun): boolean {
  switch (kind) {
    case 'authorised':
      return run.exitCode === 0 && run.stderr === '';
    case 'stale':
      return (
        run.exitCode === REFUSED_EXIT &&
        oneLine(run.stderr) &&
        /^vfbroker: VF \S+ \(PF \S+ VF \d\): the definition of storm-\d+ carries an outdated vf-token \(active generation 1\); run: vfbroker guest sync storm-\d+$/.test(
          run.stderr,
        )
      );
    case 'unauthorised':
      return (
        run.exitCode === REFUSED_EXIT &&
        oneLine(run.stderr) &&
        /^vfbroker: VF \S+ \(PF \S+ VF \d\) is not granted to guest intruder-\d+ \(.*\); grant it in \/etc\/vfbroker\/policy\.yaml/.test(
          run.stderr,
        )
      );
  }
}

function oneLine(s: string): boolean {
  return !s.includes('\n');
}
