/**
 * How config errors talk about what they found. Every value shown to a user passes through here,
 * because config files are untrusted and a misplaced secret (a Vault token pasted where a path
 * belongs) must not travel on into an error message, a log line or a D-Bus reply.
 */

/**
 * Strings up to this length are echoed. Every secret vfbroker handles is longer (a VF token or a
 * secret_id is a 36-character UUID, 32 without dashes; a Vault token is longer still), while the
 * values people mistype (names, addresses, durations, short paths) fit.
 */
const MAX_ECHO = 24;

/** A found value, as the tail of "expected …, found <this>". */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return value === '' ? 'an empty string' : quote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (typeof value === 'object') return Object.keys(value).length === 0 ? 'an empty mapping' : 'a mapping';
  return `a ${typeof value}`;
}

/** A string from the file, quoted and escaped, or only its length when it could be a secret. */
export function quote(s: string): string {
  return s.length <= MAX_ECHO ? JSON.stringify(s) : `a string of ${s.length} characters`;
}

/** `pfs[1].vfs`, `options["a.b"]`; empty for the top level. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg))
      out += out === '' ? seg : `.${seg}`;
    else out += `[${quote(String(seg))}]`;
  }
  return out;
}

/** `unknown key "plguin" (did you mean "plugin"?)`, one clause per unknown key. */
export function unknownKeysMessage(unknown: readonly string[], known: readonly string[]): string {
  return unknown
    .map((key) => {
      const near = suggest(key, known);
      const hint =
        near === null
          ? ` (expected one of ${known.map((k) => `"${k}"`).join(', ')})`
          : ` (did you mean "${near}"?)`;
      return `unknown key ${quote(key)}${hint}`;
    })
    .join('; ');
}

/**
 * The known word closest to a mistyped one, or null when none is close. Case, `_` and `-` are
 * ignored first, so `state_directory` finds `stateDirectory`; then one edit per three letters
 * (a swap of neighbours counts as one) is forgiven.
 */
export function suggest(word: string, known: readonly string[]): string | null {
  if (word.length > 64) return null;
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, '');
  const w = norm(word);
  let best: string | null = null;
  let bestDistance = Math.max(1, Math.floor(w.length / 3)) + 1;
  let bestPrefix = 0;
  for (const candidate of known) {
    const c = norm(candidate);
    const d = editDistance(w, c);
    // Between equally near words, the one that starts the same way: "vf" is "vfs" rather than "pf".
    const prefix = commonPrefix(w, c);
    if (d < bestDistance || (d === bestDistance && best !== null && prefix > bestPrefix)) {
      best = candidate;
      bestDistance = d;
      bestPrefix = prefix;
    }
  }
  return best;
}

function commonPrefix(a: string, b: string): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number) => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * cols + j] = v;
    }
  }
  return at(a.length, b.length);
}

/** `expected <what>, found <value>`; `missing (expected <what>)` when there was no value at all. */
export function expectation(what: string, found: unknown): string {
  return found === undefined
    ? `missing (expected ${what})`
    : `expected ${what}, found ${describeValue(found)}`;
}
