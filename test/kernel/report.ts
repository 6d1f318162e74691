/**
 * How a stage running in the guest reports to run.sh: one `@@VFB CASE` line per case and one
 * `@@VFB STAGE <n> END` line, on stdout (the serial console). run.sh counts the lines, so a stage that
 * dies half-way is seen as unfinished, not as passed.
 */
import { isUuid } from '../../src/uuid.js';

export class CaseReport {
  private passed = 0;
  private failed = 0;
  private skipped = 0;
  private last = performance.now();

  constructor(private readonly stage: string) {}

  /** Record one case; `expected` and `got` are short words such as `OK`, `EACCES`, `8086:10ca`. */
  check(name: string, expected: string, got: string): boolean {
    const ok = expected === got;
    this.line(name, ok, `expected ${expected}, got ${got}`);
    return ok;
  }

  /** Record one case decided elsewhere, with a free-form one-line detail. */
  record(name: string, ok: boolean, detail: string): void {
    this.line(name, ok, detail);
  }

  /**
   * Checks that none of `tokens` occurs in `output` (logs, stderr, replies), with or without its
   * dashes, case-insensitively. Only UUID-shaped values are searched for.
   */
  checkNoTokens(name: string, output: string, tokens: readonly string[]): boolean {
    const hay = output.toLowerCase();
    const leaked = tokens
      .filter((t) => isUuid(t))
      .filter((t) => hay.includes(t.toLowerCase()) || hay.includes(t.toLowerCase().replaceAll('-', '')));
    return this.check(name, 'none', leaked.length === 0 ? 'none' : `${leaked.length} token(s)`);
  }

  /**
   * Runs a stage's cases: a stage that throws half-way is recorded as one failed case, and the
   * summary line and the exit status follow either way.
   */
  async run(main: () => Promise<void>): Promise<void> {
    try {
      await main();
    } catch (err) {
      this.record(
        `stage-${this.stage}-completed`,
        false,
        `stopped early: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    process.exitCode = this.finish();
  }

  /** Record a case the target cannot run; it counts neither as passed nor as failed. */
  skip(name: string, why: string): void {
    this.skipped++;
    this.print('SKIP', name, why);
  }

  /** How many cases failed so far: a stage prints its logs for a human when any did. */
  get failures(): number {
    return this.failed;
  }

  /** Print the stage summary; the exit status a stage should end with. */
  finish(): number {
    process.stdout.write(
      `@@VFB STAGE ${this.stage} END passed=${this.passed} failed=${this.failed} skipped=${this.skipped}\n`,
    );
    return this.failed === 0 ? 0 : 1;
  }

  private line(name: string, ok: boolean, detail: string): void {
    if (ok) this.passed++;
    else this.failed++;
    this.print(ok ? 'PASS' : 'FAIL', name, detail);
  }

  private print(verdict: 'PASS' | 'FAIL' | 'SKIP', name: string, detail: string): void {
    // How long since the previous case: where a slow stage spends its time.
    const now = performance.now();
    const took = ((now - this.last) / 1000).toFixed(1);
    this.last = now;
    process.stdout.write(
      `@@VFB CASE ${this.stage} ${verdict} ${name}: ${detail.replace(/\s+/g, ' ')} [${took} s]\n`,
    );
  }
}
