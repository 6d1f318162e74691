/**
 * `npm run reliability`: vfbroker's reliability and security figures in one table.
 *
 * - load held: a boot storm — `--storm` (200) installed hooks at `prepare` at once against one
 *   `vfbroker serve` on a real dbus-daemon, with the shipped 5 s hook deadline, its host read from a
 *   /sys-like tree as on a real host. Wall time against the bound a perfect hook could reach: every
 *   hook costs at least one node start, so storm × CPU(node -e 0) ÷ cores. Needs root (the broker
 *   prepares guests for uid 0 only); skipped otherwise.
 * - faults survived: the fault tests (test/integration/faults/), run with `node --test`; a known bug
 *   (a `todo` test) counts as not survived.
 * - bad inputs tried: every fuzz target (test/reliability/fuzz-targets.ts), `--fuzz` (10,000) cases
 *   each, 1,000 for the one through a real bus.
 * - tokens leaked: failed checks of the secret-hygiene test; must be 0.
 * - data lost: failed fault tests (each checks that tokens and leases survive) plus authorised
 *   guests without a lease after the storm; must be 0.
 *
 * Prints figures; the exit status is 0 unless the harness itself broke.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { header, machineLoad, table } from './support/report.js';
import { FUZZ_TARGETS, busTarget, type FuzzStats } from '../test/reliability/fuzz-targets.js';
import { requireHookBundle } from '../test/reliability/hook-runner.js';
import { ROOT_ONLY } from '../test/reliability/root.js';
import { ServeWorld } from '../test/reliability/serve-world.js';
import {
  pfsFor,
  runStorm,
  stormDefinitions,
  stormGuests,
  type StormMix,
  type StormResult,
} from '../test/reliability/storm.js';

const FAULT_TESTS = ['vault-running', 'vault-startup', 'serve-process', 'broker-killed', 'state-directory'];
const HYGIENE_TEST = 'secret-hygiene';
const testFile = (name: string): string =>
  fileURLToPath(new URL(`../test/integration/faults/${name}.test.js`, import.meta.url));

/** CPU time (user + system, ms) of this process's children that have been waited for. */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / clockTicks();
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  ticksPerSecond ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim());
  return ticksPerSecond;
}

/** Mean CPU time of `node -e 0`, over `runs` starts. */
function nodeStartCpuMs(runs: number): number {
  const before = childrenCpuMs();
  for (let i = 0; i < runs; i++) spawnSync(process.execPath, ['-e', '0']);
  return (childrenCpuMs() - before) / runs;
}

interface StormFigures {
  readonly result: StormResult;
  readonly mix: StormMix;
  readonly boundMs: number;
  readonly nodeCpuMs: number;
  readonly hooksCpuMs: number;
  readonly leasesMissing: number;
  readonly load: string;
}

async function storm(size: number): Promise<StormFigures> {
  requireHookBundle();
  const authorised = Math.round(size * 0.35);
  const stale = Math.round(size * 0.325);
  const mix: StormMix = { authorised, stale, unauthorised: size - authorised - stale };
  const guests = stormGuests(mix);
  const world = await ServeWorld.create({ pfCount: pfsFor(mix), guests, logLevel: 'info' });
  try {
    await world.startBroker();
    await world.mirrorHostForHooks();
    const definitions = await stormDefinitions(world, guests);
    const nodeCpuMs = nodeStartCpuMs(20);
    const cpuBefore = childrenCpuMs();
    const load = machineLoad();
    const result = await runStorm(world, guests, definitions, { killAfterMs: 120_000 });
    const hooksCpuMs = childrenCpuMs() - cpuBefore;
    const leases = (await (await world.client()).status()).leases;
    return {
      result,
      mix,
      nodeCpuMs,
      boundMs: (size * nodeCpuMs) / availableParallelism(),
      hooksCpuMs,
      leasesMissing: Math.max(0, mix.authorised - leases),
      load,
    };
  } finally {
    await world.dispose();
  }
}

interface TapCounts {
  readonly pass: number;
  readonly fail: number;
  readonly todo: number;
  readonly skipped: number;
}

/** Runs compiled test files with `node --test` and counts their results from the TAP summary. */
function nodeTest(files: readonly string[]): Promise<TapCounts> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=tap', ...files], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('close', () => {
      const count = (name: string): number =>
        Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(out)?.[1] ?? 'NaN');
      resolve({ pass: count('pass'), fail: count('fail'), todo: count('todo'), skipped: count('skipped') });
    });
  });
}

async function fuzz(cases: number): Promise<FuzzStats[]> {
  const stats: FuzzStats[] = [];
  for (const target of FUZZ_TARGETS)
    stats.push(await target.run(target === busTarget ? Math.min(cases, 1_000) : cases));
  return stats;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { storm: { type: 'string', default: '200' }, fuzz: { type: 'string', default: '10000' } },
  });
  const stormSize = Number(values.storm);
  const fuzzCases = Number(values.fuzz);
  process.stdout.write(
    header('vfbroker reliability and security', [
      `storm: ${stormSize} hooks at prepare at once, shipped 5 s deadline; fuzz: ${fuzzCases} cases per target`,
    ]) + '\n',
  );

  const load = ROOT_ONLY === false ? await storm(stormSize) : null;
  const faults = await nodeTest(FAULT_TESTS.map(testFile));
  const fuzzed = await fuzz(fuzzCases);
  const hygiene = await nodeTest([testFile(HYGIENE_TEST)]);

  const rows: string[][] = [['figure', 'value', 'note']];
  if (load === null) rows.push(['load held', 'skipped', ROOT_ONLY || '']);
  else {
    const r = load.result;
    rows.push(
      [
        'load held: storm',
        `${r.hooks} hooks`,
        `${load.mix.authorised} authorised, ${load.mix.stale} stale, ${load.mix.unauthorised} unauthorised`,
      ],
      [
        '  right verdicts',
        `${r.right}/${r.hooks}`,
        r.wrong.length > 0
          ? `wrong: ${r.wrong
              .slice(0, 3)
              .map((m) => `${m.guest} exit ${m.exitCode}`)
              .join(', ')}`
          : '',
      ],
      ['  timeouts', String(r.timeouts.length), 'must be 0'],
      [
        '  wall time',
        seconds(r.wallMs),
        `bound ${seconds(load.boundMs)} = ${r.hooks} × ${load.nodeCpuMs.toFixed(0)} ms (node -e 0 CPU) ÷ ${availableParallelism()} cores`,
      ],
      [
        '  hooks’ CPU',
        seconds(load.hooksCpuMs),
        `${(load.hooksCpuMs / r.hooks).toFixed(0)} ms per hook; ${load.load} at start`,
      ],
    );
  }
  const faultTotal = faults.pass + faults.fail + faults.todo;
  rows.push([
    'faults survived',
    `${faults.pass}/${faultTotal}`,
    `${faults.todo} known bug(s) (todo), ${faults.skipped} skipped${faults.skipped > 0 ? ' (not root)' : ''}`,
  ]);
  for (const f of fuzzed) {
    rows.push([`bad inputs: ${f.target}`, String(f.cases), `slowest case ${f.maxCaseMs.toFixed(0)} ms`]);
  }
  rows.push([
    'tokens leaked',
    String(hygiene.fail),
    `${hygiene.pass} hygiene checks passed${hygiene.skipped > 0 ? `, ${hygiene.skipped} skipped (not root)` : ''}; must be 0`,
  ]);
  rows.push([
    'data lost',
    String(faults.fail + (load?.leasesMissing ?? 0)),
    'failed fault tests + storm leases missing; must be 0',
  ]);
  process.stdout.write(`${table(rows)}\n\n  end: ${machineLoad()}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(
    `reliability bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
});
